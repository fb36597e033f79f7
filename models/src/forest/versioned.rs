//! The snapshot framing shared by forests and anomaly models: a `u16` format version, then
//! postcard.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::random_cut_forest::ForestSnapshotError;

/// `value` as compact binary behind `version`.
pub(super) fn encode<T: Serialize>(version: u16, value: &T) -> Vec<u8> {
    // Serializing plain owned data into a Vec cannot fail.
    postcard::to_stdvec(&(version, value)).unwrap_or_default()
}

/// The value in `bytes`, refused unless it was written with `version`.
pub(super) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    version: u16,
) -> Result<T, ForestSnapshotError> {
    let (found, rest): (u16, &[u8]) = postcard::take_from_bytes(bytes)?;
    if found != version {
        return Err(ForestSnapshotError::UnsupportedVersion {
            found,
            expected: version,
        });
    }
    Ok(postcard::from_bytes(rest)?)
}
