//! Gzip detection and capped, multi-member decompression.
//!
//! Firehose and many producers write gzip objects made of several members; a single-member decoder
//! silently stops after the first one (`clippy.toml` forbids those). Every decompression here is
//! capped so a gzip bomb becomes a clear error instead of an out-of-memory kill.

use std::io::{self, Read};

/// The two magic bytes every gzip member starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// True when `bytes` starts like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Why a gzip payload could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The payload decompresses to more than the cap.
    #[error("decompressed size exceeds max_decompressed_bytes ({limit})")]
    TooLarge {
        /// Configured cap in bytes.
        limit: u64,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("corrupt gzip stream: {0}")]
    Corrupt(#[from] io::Error),
}

/// Decompresses every member of an in-memory gzip payload, failing once output exceeds `limit`.
pub fn decompress_capped(payload: &[u8], limit: u64) -> Result<Vec<u8>, GzipError> {
    let mut reader = CappedGzipReader::new(payload, limit);
    let mut output = Vec::with_capacity(payload.len().saturating_mul(4).min(limit as usize));
    reader
        .read_to_end(&mut output)
        .map_err(|err| reader.classify(err))?;
    Ok(output)
}

/// A streaming multi-member gzip reader that errors once more than `limit` bytes come out.
pub struct CappedGzipReader<R: Read> {
    inner: flate2::read::MultiGzDecoder<R>,
    limit: u64,
    produced: u64,
    exceeded: bool,
}

impl<R: Read> CappedGzipReader<R> {
    /// Wraps a reader of gzip bytes.
    #[allow(clippy::disallowed_methods)] // the one sanctioned use: multi-member and capped here
    pub fn new(inner: R, limit: u64) -> Self {
        Self {
            inner: flate2::read::MultiGzDecoder::new(inner),
            limit,
            produced: 0,
            exceeded: false,
        }
    }

    /// Decompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Turns an I/O error from [`Read::read`] into the typed error it stands for.
    pub fn classify(&self, err: io::Error) -> GzipError {
        if self.exceeded {
            GzipError::TooLarge { limit: self.limit }
        } else {
            GzipError::Corrupt(err)
        }
    }
}

impl<R: Read> Read for CappedGzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(io::Error::other("decompression cap exceeded"));
        }
        let room = self.limit.saturating_sub(self.produced).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        self.produced += read as u64;
        if self.produced > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompression cap exceeded"));
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn reads_every_member() {
        let mut payload = gzip(b"{\"a\":1}");
        payload.extend(gzip(b"{\"b\":2}"));
        assert!(is_gzip(&payload));
        let out = decompress_capped(&payload, 1024).unwrap();
        assert_eq!(out, b"{\"a\":1}{\"b\":2}");
    }

    #[test]
    fn bomb_hits_the_cap() {
        let payload = gzip(&vec![0u8; 1 << 20]);
        assert!(payload.len() < 16 * 1024);
        let err = decompress_capped(&payload, 64 * 1024).unwrap_err();
        assert!(matches!(err, GzipError::TooLarge { limit: 65536 }), "{err}");
    }

    #[test]
    fn exactly_at_the_cap_is_fine() {
        let payload = gzip(&[b' '; 100]);
        assert_eq!(decompress_capped(&payload, 100).unwrap().len(), 100);
    }

    #[test]
    fn the_largest_cap_means_no_cap() {
        // The room left under the cap, plus the byte that tells it was exceeded, must not
        // overflow to zero (which would read as the end of the stream).
        let payload = gzip(&[b' '; 100]);
        assert_eq!(decompress_capped(&payload, u64::MAX).unwrap().len(), 100);
    }

    #[test]
    fn corrupt_stream_is_an_error() {
        let mut payload = gzip(b"{\"a\":1}");
        payload.truncate(payload.len() - 6);
        let err = decompress_capped(&payload, 1024).unwrap_err();
        assert!(matches!(err, GzipError::Corrupt(_)), "{err}");
    }
}
