//! A canonical hash of any `Serialize` value, written straight from the typed request (no
//! `serde_json::Value` tree in between): every value tagged by its type, object keys sorted so
//! that field order never matters, and chosen top-level fields left out.

use serde::ser::{self, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// Why a value could not be hashed (a map key that is not a string or a number).
#[derive(Debug)]
pub(crate) struct CanonError(String);

impl std::fmt::Display for CanonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CanonError {}

impl ser::Error for CanonError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Feeds `v` into `h` canonically, leaving out the top-level fields named in `skip`.
pub(crate) fn hash_canonical<T: Serialize + ?Sized>(
    v: &T,
    skip: &'static [&'static str],
    h: &mut Xxh3,
) -> Result<(), CanonError> {
    v.serialize(Canon { h, skip })
}

/// The 128-bit canonical digest of one value.
fn digest<T: Serialize + ?Sized>(v: &T) -> Result<u128, CanonError> {
    let mut h = Xxh3::new();
    v.serialize(Canon {
        h: &mut h,
        skip: &[],
    })?;
    Ok(h.digest128())
}

struct Canon<'a> {
    h: &'a mut Xxh3,
    /// Keys left out of this value when it is an object (top level only).
    skip: &'static [&'static str],
}

impl Canon<'_> {
    fn number(self, n: impl std::fmt::Display) {
        // Numbers as their decimal text, as serde_json writes them.
        let s = n.to_string();
        self.h.update(b"#");
        self.h.update(s.as_bytes());
        self.h.update(b";");
    }
}

/// A sequence: its elements fed in order, after its length.
struct Seq<'a> {
    h: &'a mut Xxh3,
    items: Vec<u128>,
}

/// An object: `(key, digest of value)` entries, sorted by key when it ends.
struct Obj<'a> {
    h: &'a mut Xxh3,
    skip: &'static [&'static str],
    entries: Vec<(String, u128)>,
    key: Option<String>,
}

impl Obj<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), CanonError> {
        if !self.skip.contains(&key.as_str()) {
            let d = digest(v)?;
            self.entries.push((key, d));
        }
        Ok(())
    }

    fn finish(mut self) {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.h.update(b"{");
        self.h.update(&(self.entries.len() as u64).to_le_bytes());
        for (k, d) in &self.entries {
            self.h.update(&(k.len() as u64).to_le_bytes());
            self.h.update(k.as_bytes());
            self.h.update(&d.to_le_bytes());
        }
    }
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = CanonError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Obj<'a>;
    type SerializeStruct = Obj<'a>;
    type SerializeStructVariant = Obj<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonError> {
        self.h.update(if v { b"t" } else { b"f" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonError> {
        self.number(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonError> {
        self.number(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonError> {
        if v.is_finite() {
            // serde_json's text of a float (1.0, not 1).
            let n = serde_json::Number::from_f64(v).ok_or_else(|| CanonError("NaN".into()))?;
            self.number(n);
        } else {
            // serde_json writes a non-finite float as null.
            self.h.update(b"n");
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), CanonError> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonError> {
        self.h.update(b"s");
        self.h.update(&(v.len() as u64).to_le_bytes());
        self.h.update(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CanonError> {
        // serde_json writes bytes as an array of numbers.
        let mut s = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut s, b)?;
        }
        ser::SerializeSeq::end(s)
    }
    fn serialize_none(self) -> Result<(), CanonError> {
        self.h.update(b"n");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), CanonError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CanonError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CanonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), CanonError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), CanonError> {
        // {"variant": v}, as serde_json writes it.
        let mut o = self.map();
        o.push(variant.to_owned(), v)?;
        o.finish();
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a>, CanonError> {
        Ok(Seq {
            h: self.h,
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, CanonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, CanonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Seq<'a>, CanonError> {
        Err(CanonError(format!("tuple variants ({len}) are not JSON")))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Obj<'a>, CanonError> {
        Ok(self.map())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Obj<'a>, CanonError> {
        Ok(self.map())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Obj<'a>, CanonError> {
        Err(CanonError(format!("struct variant {variant} is not JSON")))
    }
}

impl<'a> Canon<'a> {
    fn map(self) -> Obj<'a> {
        Obj {
            h: self.h,
            skip: self.skip,
            entries: Vec::new(),
            key: None,
        }
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonError> {
        self.items.push(digest(v)?);
        Ok(())
    }
    fn end(self) -> Result<(), CanonError> {
        self.h.update(b"[");
        self.h.update(&(self.items.len() as u64).to_le_bytes());
        for d in &self.items {
            self.h.update(&d.to_le_bytes());
        }
        Ok(())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), CanonError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), CanonError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), CanonError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Obj<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), CanonError> {
        // JSON object keys are strings (serde_json also writes number keys as strings).
        let v = serde_json::to_value(k).map_err(|e| CanonError(e.to_string()))?;
        self.key = Some(match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(CanonError("a map key is not a string".into())),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonError> {
        let k = self
            .key
            .take()
            .ok_or_else(|| CanonError("a map value without its key".into()))?;
        self.push(k, v)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStruct for Obj<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), CanonError> {
        self.push(k.to_owned(), v)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStructVariant for Obj<'_> {
    type Ok = ();
    type Error = CanonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), CanonError> {
        self.push(k.to_owned(), v)
    }
    fn end(self) -> Result<(), CanonError> {
        self.finish();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(v: &serde_json::Value, skip: &'static [&'static str]) -> u128 {
        let mut h = Xxh3::new();
        hash_canonical(v, skip, &mut h).unwrap();
        h.digest128()
    }

    #[test]
    fn field_order_never_matters_and_types_are_told_apart() {
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1});
        let b = json!({"n": 1, "messages": [{"content": "hi", "role": "user"}], "model": "m"});
        assert_eq!(d(&a, &[]), d(&b, &[]));
        assert_ne!(d(&json!({"n": 1}), &[]), d(&json!({"n": "1"}), &[]));
        assert_ne!(d(&json!({"n": 1}), &[]), d(&json!({"n": 1.0}), &[]));
        assert_ne!(d(&json!([1, 2]), &[]), d(&json!([2, 1]), &[]));
        assert_ne!(d(&json!({"a": null}), &[]), d(&json!({}), &[]));
        // A value cannot pass for a neighbour's: nested structure is part of the digest.
        assert_ne!(
            d(&json!({"a": "b", "c": "d"}), &[]),
            d(&json!({"a": "bc", "": "d"}), &[])
        );
    }

    #[test]
    fn skipped_fields_only_at_the_top() {
        let a = json!({"model": "m", "stream": true, "x": {"stream": 1}});
        let b = json!({"model": "m", "stream": false, "x": {"stream": 1}});
        let c = json!({"model": "m", "x": {"stream": 2}});
        assert_eq!(d(&a, &["stream"]), d(&b, &["stream"]));
        assert_ne!(d(&a, &["stream"]), d(&c, &["stream"]));
    }

    #[test]
    fn a_typed_request_hashes_like_its_json() {
        let body = br#"{"model":"gpt-4o","temperature":0.5,"messages":[{"role":"user","content":"hi"}],"seed":7,"user":"u"}"#;
        let p =
            infergate_core::Payload::parse(infergate_core::ApiKind::ChatCompletions, body).unwrap();
        let v = p.to_value().unwrap();
        let mut h1 = Xxh3::new();
        let infergate_core::Payload::Chat(r) = &p else {
            panic!("a chat request")
        };
        hash_canonical(r, &["user"], &mut h1).unwrap();
        assert_eq!(h1.digest128(), d(&v, &["user"]));
    }
}
