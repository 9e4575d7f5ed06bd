//! Compact JSON output for the encoders: a `serde::Serializer` that writes the same bytes as
//! `serde_json::to_vec` but escapes strings eight bytes at a time ([`write_json_str`]) instead
//! of one byte at a time. Escaping was the largest single cost of encoding a request or an
//! answer (serde_json's `format_escaped_str`, ~15 % of a request and its answer).
//!
//! Numbers other than integers are handed to serde_json (so floats are written exactly as it
//! writes them); `serde_json::value::RawValue` is written verbatim, as serde_json does.

use std::fmt;

use serde::ser::{self, Serialize};

use crate::util::{write_json_str, write_u64};

/// The struct name serde_json's `RawValue` serializes under; its one field is the raw text.
const RAW_TOKEN: &str = "$serde_json::private::RawValue";
/// The same for a `Number` when some crate in the build turns on serde_json's
/// `arbitrary_precision` (features unify across a user's whole dependency graph).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Why a value could not be written as JSON (a map key that is not a string, or a custom
/// `Serialize` impl's own error).
#[derive(Debug)]
pub(crate) struct OutError(String);

impl fmt::Display for OutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutError {}

impl ser::Error for OutError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Serializes `value` as compact JSON.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, OutError> {
    to_vec_sized(value, 256)
}

/// Serializes `value` as compact JSON into a buffer of `capacity` bytes to begin with (a good
/// guess saves the buffer's regrowth and copies).
pub(crate) fn to_vec_sized<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, OutError> {
    let mut out = Vec::with_capacity(capacity);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// Serializes `value` (a struct) as [`to_vec_sized`] does, then the fields of `extra` after its
/// own, as `#[serde(flatten)]` would write them; flatten makes serde write the whole struct as a
/// map, every key escaped, where a struct's keys are written as they are.
pub(crate) fn to_vec_with_extra<T: Serialize + ?Sized>(
    value: &T,
    extra: &crate::util::Obj,
    capacity: usize,
) -> Result<Vec<u8>, OutError> {
    let mut out = to_vec_sized(value, capacity)?;
    if extra.is_empty() {
        return Ok(out);
    }
    if out.pop() != Some(b'}') {
        return Err(OutError("extra fields need an object".to_owned()));
    }
    let first = out.last() == Some(&b'{');
    write_members(&mut out, extra, first)?;
    out.push(b'}');
    Ok(out)
}

/// Writes `extra`'s members into an object being written (a `,` before each, but before the
/// first when `first`).
fn write_members(out: &mut Vec<u8>, extra: &crate::util::Obj, first: bool) -> Result<(), OutError> {
    let mut first = first;
    for (k, v) in extra {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_json_str(out, k);
        out.push(b':');
        to_writer(out, v)?;
    }
    Ok(())
}

/// A value, as the serde-driven encoders write it (for the hand-written encoders' rare parts).
pub(crate) fn write_value<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    v: &T,
) -> Result<(), crate::Error> {
    to_writer(out, v).map_err(|e| crate::Error::invalid("", e.to_string()))
}

/// The operator's extra fields, after the members a hand-written encoder wrote.
pub(crate) fn write_extra(out: &mut Vec<u8>, extra: &crate::util::Obj) -> Result<(), crate::Error> {
    write_members(out, extra, false).map_err(|e| crate::Error::invalid("", e.to_string()))
}

/// A JSON array of strings.
pub(crate) fn write_str_array(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (k, s) in items.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write_json_str(out, s);
    }
    out.push(b']');
}

/// About how many bytes the JSON of a request holding `r` takes in any protocol: its texts,
/// arguments and schemas, plus room for the keys around them.
pub(crate) fn request_size_hint(r: &crate::ir::ChatRequest) -> usize {
    let mut n: usize = 256;
    for s in &r.system {
        n = n.saturating_add(s.text.len() + 48);
    }
    for m in &r.messages {
        n = n.saturating_add(parts_size_hint(&m.content) + 48);
    }
    for t in &r.tools {
        let d = t.description.as_ref().map_or(0, String::len);
        n = n.saturating_add(t.name.len() + d + t.parameters.get().len() + 96);
    }
    n
}

/// About how many bytes the JSON of `parts` takes.
pub(crate) fn parts_size_hint(parts: &[crate::ir::Part]) -> usize {
    use crate::ir::{ImageSource, Part};
    let mut n: usize = 0;
    for p in parts {
        n = n.saturating_add(match p {
            Part::Text { text, .. } => text.len() + 48,
            Part::Image { source, .. } => match source {
                ImageSource::Base64 { data, .. } => data.len() + 96,
                ImageSource::Url(u) => u.len() + 96,
            },
            Part::ToolCall {
                id,
                name,
                arguments,
                ..
            } => id.len() + name.len() + arguments.len() + 96,
            Part::ToolResult {
                call_id, content, ..
            } => call_id.len() + parts_size_hint(content) + 96,
            Part::Reasoning {
                text,
                signature,
                redacted,
            } => {
                text.len()
                    + signature.as_ref().map_or(0, String::len)
                    + redacted.as_ref().map_or(0, String::len)
                    + 64
            }
        });
    }
    n
}

/// Appends `value` as compact JSON to `out` (on error, `out` may hold a partial value).
pub(crate) fn to_writer<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), OutError> {
    value.serialize(&mut Ser { out })
}

struct Ser<'a> {
    out: &'a mut Vec<u8>,
}

fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// Hands a value serde_json writes best (floats, 128-bit integers) to serde_json.
/// Writes a float as serde_json does (`null` when not finite).
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if via_serde_json(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

fn via_serde_json<T: Serialize>(out: &mut Vec<u8>, v: T) -> Result<(), OutError> {
    serde_json::to_writer(out, &v).map_err(|e| OutError(e.to_string()))
}

/// A compound value in progress: whether a separator is due.
pub(crate) struct Compound<'s, 'a> {
    ser: &'s mut Ser<'a>,
    first: bool,
    /// Closing bytes: `]`, `}`, or `}}` / `]}` for enum variants.
    close: &'static [u8],
    /// A `RawValue` (or arbitrary-precision number): one field, its text written as is.
    raw: bool,
}

impl Compound<'_, '_> {
    fn sep(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.ser.out.push(b',');
        }
    }

    /// A struct field's key: a name of the crate's own types, with nothing to escape (checked
    /// in debug builds, so by every test that writes the type), written as is.
    fn key(&mut self, key: &'static str) {
        debug_assert!(
            crate::util::next_special(key.as_bytes(), 0) == key.len(),
            "a struct key to escape: {key:?}"
        );
        let out = &mut *self.ser.out;
        if self.first {
            self.first = false;
        } else {
            out.push(b',');
        }
        if !crate::util::push_quoted_short(out, key.as_bytes(), b":") {
            out.reserve(key.len() + 3);
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
        }
    }
}

/// Integers up to 64 bits, written in decimal.
macro_rules! integers {
    ($($f:ident: $t:ty => $write:ident as $wide:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), OutError> {
            $write(self.out, <$wide>::from(v));
            Ok(())
        }
    )*};
}

impl<'s, 'a> ser::Serializer for &'s mut Ser<'a> {
    type Ok = ();
    type Error = OutError;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), OutError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!(
        serialize_i8: i8 => write_i64 as i64, serialize_i16: i16 => write_i64 as i64,
        serialize_i32: i32 => write_i64 as i64, serialize_i64: i64 => write_i64 as i64,
        serialize_u8: u8 => write_u64 as u64, serialize_u16: u16 => write_u64 as u64,
        serialize_u32: u32 => write_u64 as u64, serialize_u64: u64 => write_u64 as u64
    );
    fn serialize_i128(self, v: i128) -> Result<(), OutError> {
        via_serde_json(self.out, v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), OutError> {
        via_serde_json(self.out, v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), OutError> {
        via_serde_json(self.out, v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), OutError> {
        via_serde_json(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), OutError> {
        write_json_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), OutError> {
        write_json_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), OutError> {
        via_serde_json(self.out, v)
    }
    fn serialize_none(self) -> Result<(), OutError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), OutError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), OutError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), OutError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), OutError> {
        write_json_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), OutError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), OutError> {
        self.out.push(b'{');
        write_json_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'s, 'a>, OutError> {
        self.out.push(b'[');
        Ok(Compound {
            ser: self,
            first: true,
            close: b"]",
            raw: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'a>, OutError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, OutError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'a>, OutError> {
        self.out.push(b'{');
        write_json_str(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound {
            ser: self,
            first: true,
            close: b"]}",
            raw: false,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'s, 'a>, OutError> {
        self.out.push(b'{');
        Ok(Compound {
            ser: self,
            first: true,
            close: b"}",
            raw: false,
        })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>, OutError> {
        if name == RAW_TOKEN || name == NUMBER_TOKEN {
            // Its one field is the raw text: no braces around it.
            return Ok(Compound {
                ser: self,
                first: true,
                close: b"",
                raw: true,
            });
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'a>, OutError> {
        self.out.push(b'{');
        write_json_str(self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound {
            ser: self,
            first: true,
            close: b"}}",
            raw: false,
        })
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = OutError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), OutError> {
        self.sep();
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), OutError> {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// Tuples, tuple structs and tuple variants are written as sequences.
macro_rules! as_seq {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for Compound<'_, '_> {
            type Ok = ();
            type Error = OutError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), OutError> {
                ser::SerializeSeq::serialize_element(self, value)
            }
            fn end(self) -> Result<(), OutError> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

as_seq!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = OutError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), OutError> {
        self.sep();
        key.serialize(KeySer {
            out: self.ser.out,
            raw: false,
        })?;
        self.ser.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), OutError> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), OutError> {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = OutError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), OutError> {
        if self.raw {
            // serde_json refuses anything but the one text field too (an internally tagged
            // enum would add its tag here).
            if !self.first || (key != RAW_TOKEN && key != NUMBER_TOKEN) {
                return Err(OutError("a raw JSON value takes one field".to_owned()));
            }
            self.first = false;
            return value.serialize(KeySer {
                out: self.ser.out,
                raw: true,
            });
        }
        self.key(key);
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), OutError> {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = OutError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), OutError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), OutError> {
        ser::SerializeStruct::end(self)
    }
}

/// Map keys: strings, or integers, booleans and chars written as strings (as serde_json does);
/// with `raw`, the text of a `RawValue`: a string written as is, nothing else.
struct KeySer<'a> {
    out: &'a mut Vec<u8>,
    raw: bool,
}

fn key_error() -> OutError {
    OutError("key must be a string".to_owned())
}

fn raw_error() -> OutError {
    OutError("expected a raw JSON text".to_owned())
}

macro_rules! quoted_key {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), OutError> {
            if self.raw {
                return Err(raw_error());
            }
            self.out.push(b'"');
            let r = via_serde_json(self.out, v);
            self.out.push(b'"');
            r
        }
    )*};
}

impl ser::Serializer for KeySer<'_> {
    type Ok = ();
    type Error = OutError;
    type SerializeSeq = ser::Impossible<(), OutError>;
    type SerializeTuple = ser::Impossible<(), OutError>;
    type SerializeTupleStruct = ser::Impossible<(), OutError>;
    type SerializeTupleVariant = ser::Impossible<(), OutError>;
    type SerializeMap = ser::Impossible<(), OutError>;
    type SerializeStruct = ser::Impossible<(), OutError>;
    type SerializeStructVariant = ser::Impossible<(), OutError>;

    fn serialize_str(self, v: &str) -> Result<(), OutError> {
        if self.raw {
            self.out.extend_from_slice(v.as_bytes());
        } else {
            write_json_str(self.out, v);
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        write_json_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_bool(self, v: bool) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        self.out
            .extend_from_slice(if v { b"\"true\"" } else { b"\"false\"" });
        Ok(())
    }
    quoted_key!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128
    );
    fn serialize_f32(self, v: f32) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        if !v.is_finite() {
            return Err(OutError("float key must be finite".to_owned()));
        }
        self.out.push(b'"');
        let r = via_serde_json(self.out, v);
        self.out.push(b'"');
        r
    }
    fn serialize_f64(self, v: f64) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        if !v.is_finite() {
            return Err(OutError("float key must be finite".to_owned()));
        }
        self.out.push(b'"');
        let r = via_serde_json(self.out, v);
        self.out.push(b'"');
        r
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        write_json_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        value.serialize(self)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), OutError> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<(), OutError> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), OutError> {
        if self.raw {
            return Err(raw_error());
        }
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), OutError> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), OutError> {
        Err(key_error())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), OutError> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, OutError> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, OutError> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, OutError> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, OutError> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, OutError> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, OutError> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, OutError> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json, value::RawValue};

    use super::*;
    use serde::Serialize;

    fn same<T: Serialize + ?Sized>(v: &T) {
        let want = serde_json::to_vec(v).expect("serde_json writes it");
        let got = to_vec(v).expect("writes it");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    /// Extra fields after a struct's own are written as `#[serde(flatten)]` writes them.
    #[test]
    fn extra_fields_follow_as_flatten_writes_them() {
        #[derive(Serialize)]
        struct Flat<'a> {
            a: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<&'a str>,
            #[serde(flatten)]
            extra: &'a crate::util::Obj,
        }
        #[derive(Serialize)]
        struct Own<'a> {
            a: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Empty {}
        let extras = [
            json!({}),
            json!({"k": 1}),
            json!({"quote\"key": [1, {"x": null}], "z": "é\n"}),
        ];
        for extra in &extras {
            let extra = extra.as_object().expect("object");
            for b in [None, Some("t")] {
                let want = serde_json::to_vec(&Flat { a: 7, b, extra }).expect("writes");
                let got = to_vec_with_extra(&Own { a: 7, b }, extra, 8).expect("writes");
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
            let got = to_vec_with_extra(&Empty {}, extra, 8).expect("writes");
            let want = serde_json::to_vec(extra).expect("writes");
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
        assert!(to_vec_with_extra(&[1], extras[1].as_object().expect("object"), 8).is_err());
    }

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Tagged<'a> {
        Text { text: &'a str },
        Image { url: Option<&'a str>, n: u32 },
    }

    #[derive(Serialize)]
    enum Outer {
        Unit,
        New(i32),
        Tup(u8, String),
        Rec { a: bool, b: Vec<f64> },
    }

    #[derive(Serialize)]
    struct Shape<'a> {
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        raw: &'a RawValue,
        raw_box: Box<RawValue>,
        parts: Vec<Tagged<'a>>,
        outer: Vec<Outer>,
        map: std::collections::BTreeMap<u32, &'a str>,
        bmap: std::collections::BTreeMap<bool, u8>,
        unit: (),
        tuple: (i8, char, f32),
        big: (u128, i128),
        floats: [f64; 5],
        bytes: &'a [u8],
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let raw = RawValue::from_string(r#"{ "a" : [1, 2] }"#.to_owned()).expect("json");
        same(&Shape {
            id: "a \"quoted\"\n\u{1}\u{1f}é\u{2028} \\ tail of more than eight bytes",
            skipped: None,
            raw: &raw,
            raw_box: raw.clone(),
            parts: vec![
                Tagged::Text { text: "t" },
                Tagged::Image { url: None, n: 3 },
            ],
            outer: vec![
                Outer::Unit,
                Outer::New(-7),
                Outer::Tup(1, "x".into()),
                Outer::Rec {
                    a: true,
                    b: vec![0.1, -0.0, 1e300],
                },
            ],
            map: [(1, "one"), (20, "twenty")].into_iter().collect(),
            bmap: [(true, 1)].into_iter().collect(),
            unit: (),
            tuple: (i8::MIN, '"', 1.5),
            big: (u128::MAX, i128::MIN),
            floats: [f64::NAN, f64::INFINITY, 0.3, 1.0, 123_456_789.125],
            bytes: b"ab",
        });
        same(&json!({"k": [null, true, 1, -1, 1.25, "s", {"n": {}}, []], "": ""}));
        same(&i64::MIN);
        same(&u64::MAX);
    }

    /// What `serde_json::Number` writes when `arbitrary_precision` is on somewhere in the build.
    struct PreciseNumber(&'static str);

    impl Serialize for PreciseNumber {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeStruct;
            let mut st = s.serialize_struct(NUMBER_TOKEN, 1)?;
            st.serialize_field(NUMBER_TOKEN, self.0)?;
            st.end()
        }
    }

    #[test]
    fn numbers_of_arbitrary_precision_are_written_as_their_text() {
        let v = to_vec(&[
            PreciseNumber("12345678901234567890123.5"),
            PreciseNumber("-1"),
        ])
        .expect("writes it");
        assert_eq!(v, b"[12345678901234567890123.5,-1]");
    }

    /// A raw value with another field (as an internally tagged enum would make), and one whose
    /// text is not a string: refused, as serde_json refuses them.
    struct BadRaw(bool);

    impl Serialize for BadRaw {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeStruct;
            let mut st = s.serialize_struct(RAW_TOKEN, 2)?;
            if self.0 {
                st.serialize_field("type", "V")?;
                st.serialize_field(RAW_TOKEN, "{}")?;
            } else {
                st.serialize_field(RAW_TOKEN, &["a", "b"])?;
            }
            st.end()
        }
    }

    #[test]
    fn a_raw_value_is_one_text_field() {
        for bad in [BadRaw(true), BadRaw(false)] {
            assert!(serde_json::to_vec(&bad).is_err());
            assert!(to_vec(&bad).is_err());
        }
        let keys: std::collections::BTreeMap<Option<&str>, u8> =
            [(Some("k"), 1)].into_iter().collect();
        same(&keys);
    }

    #[test]
    fn refuses_keys_that_are_not_strings() {
        let m: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        assert!(serde_json::to_vec(&m).is_err());
        assert!(to_vec(&m).is_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(v in json_value()) {
            let want = serde_json::to_vec(&v).expect("serde_json writes it");
            prop_assert_eq!(to_vec(&v).expect("writes it"), want);
        }
    }
}
