//! The descriptive attributes of a record (model, vin, region…). Most jobs never read them,
//! so the common shape — a flat JSON object of plain strings — is kept as the object's text and
//! read on demand, instead of building name/value pairs for every record. Every other shape is
//! held as parsed pairs. Both forms compare, print and serialize the same way, as a list of
//! (name, value) pairs.

use compact_str::CompactString;
use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::scan::Scanner;

/// Attributes in payload order, names unique (a repeated name keeps its first position and its
/// last value).
#[derive(Clone, Default)]
pub struct Attributes {
    form: Form,
}

#[derive(Clone)]
enum Form {
    /// Parsed pairs.
    Pairs(Vec<(CompactString, CompactString)>),
    /// The text of a JSON object whose members are all strings without escapes or control
    /// characters, with unique names (see [`ObjectMembers`]); only the decoder builds one.
    Object(String),
}

impl Default for Form {
    fn default() -> Self {
        Form::Pairs(Vec::new())
    }
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attributes read from the text of a JSON object that [`ObjectMembers::plain`] accepted.
    pub(crate) fn from_plain_object(text: String) -> Self {
        debug_assert!(ObjectMembers::plain(&text).is_some(), "{text}");
        Attributes {
            form: Form::Object(text),
        }
    }

    /// The value of attribute `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The attributes in payload order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.form {
            Form::Pairs(pairs) => Iter::Pairs(pairs.iter()),
            Form::Object(text) => Iter::Object(ObjectMembers::new(text)),
        }
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        match &self.form {
            Form::Pairs(pairs) => pairs.len(),
            Form::Object(text) => ObjectMembers::new(text).count(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        match &self.form {
            Form::Pairs(pairs) => pairs.is_empty(),
            // A plain object has at least one member.
            Form::Object(_) => false,
        }
    }

    /// Sets attribute `name` to `value`, in place when it exists, else at the end.
    pub fn insert(&mut self, name: &str, value: &str) {
        let pairs = self.pairs_mut();
        match pairs.iter_mut().find(|(key, _)| key == name) {
            Some(pair) => pair.1 = CompactString::from(value),
            None => pairs.push((CompactString::from(name), CompactString::from(value))),
        }
    }

    /// The attributes as parsed pairs (converting the object form once).
    fn pairs_mut(&mut self) -> &mut Vec<(CompactString, CompactString)> {
        if let Form::Object(text) = &self.form {
            let pairs = ObjectMembers::new(text)
                .map(|(name, value)| (CompactString::from(name), CompactString::from(value)))
                .collect();
            self.form = Form::Pairs(pairs);
        }
        match &mut self.form {
            Form::Pairs(pairs) => pairs,
            Form::Object(_) => unreachable!("converted to pairs above"),
        }
    }

    /// The storage, for a decoder to reuse: the pair vector or the object text.
    pub(crate) fn into_storage(self) -> AttributeStorage {
        match self.form {
            Form::Pairs(pairs) => AttributeStorage::Pairs(pairs),
            Form::Object(text) => AttributeStorage::Object(text),
        }
    }

    /// Takes the storage out, leaving no attributes: a decoder writing a new record over this
    /// one's reuses it.
    pub(crate) fn take_storage(&mut self) -> AttributeStorage {
        std::mem::take(self).into_storage()
    }

    /// Bytes of heap held, for the bounds on what a decoder keeps for reuse.
    pub(crate) fn capacity_bytes(&self) -> usize {
        match &self.form {
            Form::Pairs(pairs) => {
                pairs.capacity() * std::mem::size_of::<(CompactString, CompactString)>()
            }
            Form::Object(text) => text.capacity(),
        }
    }
}

/// What [`Attributes::into_storage`] hands back.
pub(crate) enum AttributeStorage {
    /// A pair vector.
    Pairs(Vec<(CompactString, CompactString)>),
    /// An object text buffer.
    Object(String),
}

impl From<Vec<(CompactString, CompactString)>> for Attributes {
    /// Pairs as given (the caller keeps names unique).
    fn from(pairs: Vec<(CompactString, CompactString)>) -> Self {
        Attributes {
            form: Form::Pairs(pairs),
        }
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Serialized as a list of `[name, value]` pairs, whatever the form, with its length first
/// (compact formats such as the checkpoints' postcard need it).
impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for pair in self.iter() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<(CompactString, CompactString)>::deserialize(deserializer).map(Attributes::from)
    }
}

/// The attributes of either form, as (name, value).
pub enum Iter<'a> {
    /// Over parsed pairs.
    Pairs(std::slice::Iter<'a, (CompactString, CompactString)>),
    /// Over an object's text.
    Object(ObjectMembers<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Pairs(pairs) => pairs
                .next()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            Iter::Object(members) => members.next(),
        }
    }
}

/// Most members a plain object may have: checking names for repeats is quadratic.
const MAX_PLAIN_MEMBERS: usize = 16;

/// The members of a plain object's text: a JSON object (JSON whitespace allowed between
/// tokens) whose values are all strings, with no escape or control character in any name or
/// value. Such strings are their own text, so members are slices of the object.
pub struct ObjectMembers<'a> {
    scanner: Scanner<'a>,
    /// True once the first member (after `{`) is read; the others follow a `,`.
    started: bool,
}

impl<'a> ObjectMembers<'a> {
    /// The members of a text [`Self::plain`] accepted.
    pub(crate) fn new(text: &'a str) -> Self {
        ObjectMembers {
            scanner: Scanner::new(text),
            started: false,
        }
    }

    /// The length of the plain object at the start of `text` when it has 1 to
    /// [`MAX_PLAIN_MEMBERS`] members with unique names; `None` for anything else (which the
    /// caller parses into pairs instead).
    pub(crate) fn plain(text: &'a str) -> Option<usize> {
        let mut members = ObjectMembers::new(text);
        let mut names: [&str; MAX_PLAIN_MEMBERS] = [""; MAX_PLAIN_MEMBERS];
        let mut count = 0;
        loop {
            let (name, _) = members.member()?;
            if count == MAX_PLAIN_MEMBERS || names[..count].contains(&name) {
                return None;
            }
            names[count] = name;
            count += 1;
            if members.scanner.eat(b'}').is_some() {
                return Some(members.scanner.at);
            }
        }
    }

    /// The next member: after the `{` for the first, after a `,` for the others.
    fn member(&mut self) -> Option<(&'a str, &'a str)> {
        let separator = if std::mem::replace(&mut self.started, true) {
            b','
        } else {
            b'{'
        };
        let scanner = &mut self.scanner;
        scanner.eat(separator)?;
        let name = scanner.string()?;
        scanner.eat(b':')?;
        let value = scanner.string()?;
        Some((name, value))
    }
}

impl<'a> Iterator for ObjectMembers<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.member()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(list: &[(&str, &str)]) -> Attributes {
        Attributes::from(
            list.iter()
                .map(|(name, value)| (CompactString::from(*name), CompactString::from(*value)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn an_object_reads_like_its_pairs() {
        let text = r#"{ "model" : "e-van", "vin":"FS0001" ,"région":"Île"}"#;
        assert_eq!(ObjectMembers::plain(text), Some(text.len()));
        let object = Attributes::from_plain_object(text.to_owned());
        let parsed = pairs(&[("model", "e-van"), ("vin", "FS0001"), ("région", "Île")]);
        assert_eq!(object, parsed);
        assert_eq!(format!("{object:?}"), format!("{parsed:?}"));
        assert_eq!(object.get("vin"), Some("FS0001"));
        assert_eq!(object.get("colour"), None);
        assert_eq!(object.len(), 3);
        assert!(!object.is_empty());
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            serde_json::to_string(&parsed).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"[["model","e-van"],["vin","FS0001"],["région","Île"]]"#
        );
        let back: Attributes =
            serde_json::from_str(&serde_json::to_string(&object).unwrap()).unwrap();
        assert_eq!(back, object);
        // Checkpoints hold records in postcard, which needs every length up front; both forms
        // write the same bytes.
        let bytes = postcard::to_stdvec(&object).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&parsed).unwrap());
        assert_eq!(postcard::from_bytes::<Attributes>(&bytes).unwrap(), object);
    }

    #[test]
    fn only_plain_objects_with_unique_names_are_kept_as_text() {
        for text in [
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a":"x
y"}"#,
            r#"{"a":null}"#,
            r#"{"a":"x",}"#,
            r#"{"a":"x""#,
            r#"["a","x"]"#,
            r#"{"a" "x"}"#,
            r#"{"a":"x"{"b":"y"}"#,
            r#"{"a":"x",,"b":"y"}"#,
        ] {
            assert_eq!(ObjectMembers::plain(text), None, "{text}");
        }
        let many: Vec<String> = (0..=MAX_PLAIN_MEMBERS)
            .map(|i| format!("\"k{i}\":\"v\""))
            .collect();
        assert_eq!(
            ObjectMembers::plain(&format!("{{{}}}", many.join(","))),
            None
        );
        assert_eq!(ObjectMembers::plain(r#"{"a":"x"} trailing"#), Some(9));
    }

    #[test]
    fn inserting_converts_the_text_to_pairs_and_keeps_positions() {
        let mut object = Attributes::from_plain_object(r#"{"model":"van","vin":"X"}"#.into());
        object.insert("model", "truck");
        object.insert("region", "eu");
        assert_eq!(
            object,
            pairs(&[("model", "truck"), ("vin", "X"), ("region", "eu")])
        );
    }

    proptest! {
        #[test]
        fn any_plain_object_reads_as_serde_reads_it(
            members in proptest::collection::vec(("[a-zé_]{1,6}", "[ -!#-\\[\\]-~é]{0,12}"), 1..8),
            spaced in proptest::bool::ANY,
        ) {
            let gap = if spaced { " " } else { "" };
            let body: Vec<String> = members
                .iter()
                .map(|(name, value)| format!("{gap}\"{name}\"{gap}:{gap}\"{value}\"{gap}"))
                .collect();
            let text = format!("{{{}}}", body.join(","));
            let unique = {
                let mut names: Vec<&String> = members.iter().map(|(name, _)| name).collect();
                names.sort();
                names.dedup();
                names.len() == members.len()
            };
            prop_assert_eq!(ObjectMembers::plain(&text).is_some(), unique, "{}", text);
            if unique {
                let object = Attributes::from_plain_object(text.clone());
                let expected: Vec<(String, String)> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
                    .unwrap()
                    .into_iter()
                    .map(|(name, value)| (name, value.as_str().unwrap().to_owned()))
                    .collect();
                let mut got: Vec<(String, String)> = object.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
                let mut expected_sorted = expected.clone();
                got.sort();
                expected_sorted.sort();
                prop_assert_eq!(got, expected_sorted);
            }
        }
    }
}
