//! KPL aggregated records: the Kinesis Producer Library packs many user records into one Kinesis
//! record as `F3 89 9A C2` + protobuf `AggregatedRecord` + MD5 of the protobuf. This module
//! unpacks them (and packs them, for producers and tests). Anything that is not a well-formed
//! aggregate — no magic, bad MD5, broken protobuf — is a plain record, as in the KCL.

use md5::{Digest, Md5};

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_BYTES: usize = 16;

/// One user record inside an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// Its explicit hash key (decimal), when the producer set one.
    pub explicit_hash_key: Option<String>,
    /// The payload.
    pub data: Vec<u8>,
}

impl SubRecord {
    /// The 128-bit hash key Kinesis routes by: the explicit hash key, or the MD5 of the
    /// partition key read as a big-endian number.
    pub fn hash_key(&self) -> u128 {
        match self.explicit_hash_key.as_deref().map(str::parse::<u128>) {
            Some(Ok(key)) => key,
            _ => partition_key_hash(&self.partition_key),
        }
    }
}

/// MD5 of a partition key as the 128-bit number Kinesis maps onto shard hash-key ranges.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// What a Kinesis record's data turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpacked {
    /// Not an aggregate (or a damaged one, with the reason): the data is one record.
    Plain(Option<String>),
    /// The user records of a well-formed aggregate, in order.
    Aggregate(Vec<SubRecord>),
}

/// Unpacks `data` if it is a well-formed aggregate.
pub fn unpack(data: &[u8]) -> Unpacked {
    if data.len() < MAGIC.len() + DIGEST_BYTES || data[..MAGIC.len()] != MAGIC {
        return Unpacked::Plain(None);
    }
    let body = &data[MAGIC.len()..data.len() - DIGEST_BYTES];
    let digest = &data[data.len() - DIGEST_BYTES..];
    if Md5::digest(body).as_slice() != digest {
        return Unpacked::Plain(Some("KPL aggregate with a wrong MD5".to_owned()));
    }
    match decode_aggregate(body) {
        Ok(records) => Unpacked::Aggregate(records),
        Err(reason) => Unpacked::Plain(Some(format!("KPL aggregate: {reason}"))),
    }
}

/// Packs user records into one aggregated record (what the KPL sends).
pub fn aggregate(records: &[SubRecord]) -> Vec<u8> {
    fn index_of<'a>(table: &mut Vec<&'a str>, key: &'a str) -> u64 {
        let index = table.iter().position(|k| *k == key).unwrap_or_else(|| {
            table.push(key);
            table.len() - 1
        });
        index as u64
    }
    let mut keys: Vec<&str> = Vec::new();
    let mut hash_keys: Vec<&str> = Vec::new();
    let mut encoded_records = Vec::new();
    for record in records {
        let mut inner = Vec::new();
        put_varint_field(&mut inner, 1, index_of(&mut keys, &record.partition_key));
        if let Some(hash_key) = &record.explicit_hash_key {
            put_varint_field(&mut inner, 2, index_of(&mut hash_keys, hash_key));
        }
        put_bytes_field(&mut inner, 3, &record.data);
        encoded_records.push(inner);
    }
    let mut body = Vec::new();
    for key in &keys {
        put_bytes_field(&mut body, 1, key.as_bytes());
    }
    for key in &hash_keys {
        put_bytes_field(&mut body, 2, key.as_bytes());
    }
    for inner in &encoded_records {
        put_bytes_field(&mut body, 3, inner);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

/// Packs `(partition key, data)` records into KPL aggregates of up to `per_aggregate`, grouped
/// by the shard (of `ranges`, inclusive hash-key ranges) each key hashes to, as the KPL does,
/// keeping input order within each shard. Returns (partition key of the aggregate, aggregated
/// data, user records in it).
pub fn aggregate_by_shard(
    records: Vec<(String, Vec<u8>)>,
    ranges: &[(u128, u128)],
    per_aggregate: usize,
) -> Vec<(String, Vec<u8>, usize)> {
    let shard_of = |key: &str| {
        let hash = partition_key_hash(key);
        ranges
            .iter()
            .position(|(low, high)| *low <= hash && hash <= *high)
            .unwrap_or(0)
    };
    let mut pending: Vec<Vec<SubRecord>> = vec![Vec::new(); ranges.len().max(1)];
    let mut out = Vec::new();
    let flush = |group: &mut Vec<SubRecord>, out: &mut Vec<(String, Vec<u8>, usize)>| {
        if let Some(first) = group.first() {
            out.push((first.partition_key.clone(), aggregate(group), group.len()));
            group.clear();
        }
    };
    for (key, data) in records {
        let shard = shard_of(&key);
        pending[shard].push(SubRecord {
            partition_key: key,
            explicit_hash_key: None,
            data,
        });
        if pending[shard].len() >= per_aggregate {
            flush(&mut pending[shard], &mut out);
        }
    }
    for group in &mut pending {
        flush(group, &mut out);
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3);
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A protobuf field value as read from the wire.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Reads protobuf fields one by one.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .rest
                .split_first()
                .ok_or_else(|| "truncated varint".to_owned())?;
            self.rest = rest;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".to_owned())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.rest.len() {
            return Err(format!(
                "field of {len} bytes with {} left",
                self.rest.len()
            ));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((tag >> 3, value)))
    }
}

fn text(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

fn decode_aggregate(body: &[u8]) -> Result<Vec<SubRecord>, String> {
    let mut keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw_records = Vec::new();
    let mut fields = Fields { rest: body };
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (1, Value::Bytes(bytes)) => keys.push(text(bytes, "partition key")?),
            (2, Value::Bytes(bytes)) => hash_keys.push(text(bytes, "explicit hash key")?),
            (3, Value::Bytes(bytes)) => raw_records.push(bytes),
            (1..=3, _) => return Err(format!("field {field} has the wrong wire type")),
            _ => {}
        }
    }
    let mut records = Vec::with_capacity(raw_records.len());
    for (index, raw) in raw_records.into_iter().enumerate() {
        let mut key_index = None;
        let mut hash_index = None;
        let mut data = None;
        let mut fields = Fields { rest: raw };
        while let Some((field, value)) = fields.next_field()? {
            match (field, value) {
                (1, Value::Varint(i)) => key_index = Some(i),
                (2, Value::Varint(i)) => hash_index = Some(i),
                (3, Value::Bytes(bytes)) => data = Some(bytes.to_vec()),
                (1..=3, _) => {
                    return Err(format!(
                        "record {index}: field {field} has the wrong wire type"
                    ))
                }
                _ => {}
            }
        }
        let lookup = |table: &[String], i: u64, what: &str| {
            usize::try_from(i)
                .ok()
                .and_then(|i| table.get(i).cloned())
                .ok_or_else(|| format!("record {index}: {what} index {i} is not in the table"))
        };
        let key_index =
            key_index.ok_or_else(|| format!("record {index}: no partition key index"))?;
        records.push(SubRecord {
            partition_key: lookup(&keys, key_index, "partition key")?,
            explicit_hash_key: hash_index
                .map(|i| lookup(&hash_keys, i, "explicit hash key"))
                .transpose()?,
            data: data.ok_or_else(|| format!("record {index}: no data"))?,
        });
    }
    if records.is_empty() {
        return Err("no records".to_owned());
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(key: &str, hash: Option<&str>, data: &str) -> SubRecord {
        SubRecord {
            partition_key: key.to_owned(),
            explicit_hash_key: hash.map(str::to_owned),
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn aggregates_round_trip_with_shared_key_tables() {
        let records = vec![
            sub("v1", None, "{\"a\":1}"),
            sub("v2", Some("12345"), "{\"a\":2}"),
            sub("v1", None, ""),
        ];
        let packed = aggregate(&records);
        assert_eq!(&packed[..4], &MAGIC);
        assert_eq!(unpack(&packed), Unpacked::Aggregate(records));
    }

    #[test]
    fn anything_else_is_a_plain_record() {
        assert_eq!(unpack(b"{\"vehicle\":\"v1\"}"), Unpacked::Plain(None));
        let mut packed = aggregate(&[sub("v1", None, "x")]);
        let last = packed.len() - 1;
        packed[last] ^= 1;
        assert_eq!(
            unpack(&packed),
            Unpacked::Plain(Some("KPL aggregate with a wrong MD5".to_owned()))
        );
        let mut broken = MAGIC.to_vec();
        let body = [0x1A, 0x05, 0x08];
        broken.extend_from_slice(&body);
        broken.extend_from_slice(&Md5::digest(body));
        match unpack(&broken) {
            Unpacked::Plain(Some(reason)) => assert!(reason.contains("bytes"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aggregates_by_shard_keep_input_order_per_key() {
        let records: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| (format!("v{}", i % 3), format!("{{\"n\":{i}}}").into_bytes()))
            .collect();
        let half = u128::MAX / 2;
        let packed = aggregate_by_shard(records, &[(0, half), (half + 1, u128::MAX)], 4);
        let mut seen = Vec::new();
        for (_, data, count) in &packed {
            let Unpacked::Aggregate(subs) = unpack(data) else {
                panic!("an aggregate")
            };
            assert_eq!(subs.len(), *count);
            seen.extend(subs.into_iter().map(|s| String::from_utf8(s.data).unwrap()));
        }
        assert_eq!(seen.len(), 10);
        for key in 0..3 {
            let ns: Vec<usize> = seen
                .iter()
                .map(|s| s[5..s.len() - 1].parse::<usize>().unwrap())
                .filter(|n| n % 3 == key)
                .collect();
            assert!(ns.windows(2).all(|w| w[0] < w[1]), "{ns:?}");
        }
    }

    #[test]
    fn hash_keys_follow_kinesis() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        assert_eq!(
            partition_key_hash(""),
            0xd41d8cd98f00b204e9800998ecf8427e_u128
        );
        assert_eq!(sub("v1", Some("7"), "").hash_key(), 7);
        assert_eq!(sub("", None, "").hash_key(), partition_key_hash(""));
    }
}
