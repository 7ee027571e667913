//! Entities to and from Table Storage's JSON (OData v3, `minimalmetadata`).
//!
//! JSON has one number type; Table Storage has `Edm.Int32`, `Edm.Int64` and `Edm.Double`. An
//! integer within i32 goes as a plain number (inferred Int32); a larger one as a string with
//! `"x@odata.type":"Edm.Int64"`; a float with `"x@odata.type":"Edm.Double"` (so that `2.0`
//! stays a float). Reading asks for `minimalmetadata`, which annotates Int64 values (sent back as
//! strings, like `nometadata` would, but there without a way to tell them from strings) and
//! carries each entity's ETag; the annotations and system properties are then stripped.

use serde_json::{Map, Value};

use crate::ports::state_store::{ETag, Entity};

const TYPE_SUFFIX: &str = "@odata.type";

/// The entity as a JSON object for an insert or replace.
pub(super) fn encode(entity: &Entity) -> Map<String, Value> {
    let mut out = Map::with_capacity(entity.properties.len() + 2);
    out.insert("PartitionKey".into(), Value::String(entity.partition_key.clone()));
    out.insert("RowKey".into(), Value::String(entity.row_key.clone()));
    for (name, value) in &entity.properties {
        match value {
            Value::Number(n) => match n.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => {
                    out.insert(name.clone(), value.clone());
                }
                Some(i) => {
                    out.insert(format!("{name}{TYPE_SUFFIX}"), "Edm.Int64".into());
                    out.insert(name.clone(), Value::String(i.to_string()));
                }
                None => {
                    out.insert(format!("{name}{TYPE_SUFFIX}"), "Edm.Double".into());
                    out.insert(name.clone(), n.as_f64().map_or(Value::Null, Value::from));
                }
            },
            other => {
                out.insert(name.clone(), other.clone());
            }
        }
    }
    out
}

/// Why an answer's entity could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum DecodeError {
    /// Not a JSON object.
    #[error("entity is not a JSON object")]
    NotAnObject,
    /// A key is missing or not a string.
    #[error("entity has no string {0}")]
    MissingKey(&'static str),
    /// An annotated value does not parse as its type.
    #[error("property {name} is not a valid {edm_type}")]
    BadValue {
        /// The property.
        name: String,
        /// Its declared type.
        edm_type: String,
    },
}

/// An entity from a `minimalmetadata` JSON object; `etag` overrides the object's `odata.etag`.
pub(super) fn decode(value: Value, etag: Option<String>) -> Result<Entity, DecodeError> {
    let Value::Object(mut object) = value else {
        return Err(DecodeError::NotAnObject);
    };
    let mut take_key = |name: &'static str| match object.remove(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(DecodeError::MissingKey(name)),
    };
    let partition_key = take_key("PartitionKey")?;
    let row_key = take_key("RowKey")?;
    let etag = etag.or_else(|| object.get("odata.etag").and_then(Value::as_str).map(str::to_owned));
    let types: Map<String, Value> =
        object.iter().filter_map(|(k, v)| Some((k.strip_suffix(TYPE_SUFFIX)?.to_owned(), v.clone()))).collect();
    let mut properties = Map::with_capacity(object.len());
    for (name, value) in object {
        if name.starts_with("odata.") || name.ends_with(TYPE_SUFFIX) || name == "Timestamp" {
            continue;
        }
        let value = match types.get(&name).and_then(Value::as_str) {
            Some(edm_type @ "Edm.Int64") => {
                let parsed = match &value {
                    Value::String(s) => s.parse::<i64>().ok(),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                };
                Value::from(
                    parsed.ok_or_else(|| DecodeError::BadValue { name: name.clone(), edm_type: edm_type.into() })?,
                )
            }
            Some(edm_type @ "Edm.Double") => {
                let parsed = match &value {
                    Value::String(s) => s.parse::<f64>().ok(),
                    Value::Number(n) => n.as_f64(),
                    _ => None,
                };
                parsed
                    .filter(|f| f.is_finite())
                    .map(Value::from)
                    .ok_or_else(|| DecodeError::BadValue { name: name.clone(), edm_type: edm_type.into() })?
            }
            // DateTime, Guid and Binary stay strings; untyped values are strings, booleans,
            // Int32 and Double, which JSON carries as they are.
            _ => value,
        };
        properties.insert(name, value);
    }
    Ok(Entity { partition_key, row_key, properties, etag: etag.map(ETag) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn large_integers_and_floats_are_annotated() {
        let entity = Entity::new("p", "r").with("small", 7).with("big", 1_i64 << 40).with("f", 2.0).with("s", "x");
        let json = Value::Object(encode(&entity));
        assert_eq!(
            json,
            json!({
                "PartitionKey": "p", "RowKey": "r", "small": 7, "s": "x",
                "big@odata.type": "Edm.Int64", "big": "1099511627776",
                "f@odata.type": "Edm.Double", "f": 2.0
            })
        );
    }

    #[test]
    fn minimal_metadata_decodes_to_the_written_properties() {
        let answer = json!({
            "odata.metadata": "http://x/$metadata#t/@Element",
            "odata.etag": "W/\"datetime'2026-01-01T00%3A00%3A00.1234567Z'\"",
            "PartitionKey": "p", "RowKey": "r",
            "Timestamp@odata.type": "Edm.DateTime", "Timestamp": "2026-01-01T00:00:00.1234567Z",
            "big@odata.type": "Edm.Int64", "big": "9007199254740993",
            "neg": -42, "ratio": 0.25, "flag": true, "text": "9007199254740993",
            "f@odata.type": "Edm.Double", "f": 2
        });
        let entity = decode(answer, None).expect("decode");
        assert_eq!(entity.etag, Some(ETag("W/\"datetime'2026-01-01T00%3A00%3A00.1234567Z'\"".into())));
        let expected = Entity::new("p", "r")
            .with("big", 9_007_199_254_740_993_i64)
            .with("neg", -42)
            .with("ratio", 0.25)
            .with("flag", true)
            .with("text", "9007199254740993")
            .with("f", 2.0);
        assert_eq!(entity.properties, expected.properties);
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(decode(json!([]), None).is_err());
        assert!(decode(json!({"RowKey": "r"}), None).is_err());
        assert!(
            decode(json!({"PartitionKey": "p", "RowKey": "r", "x@odata.type": "Edm.Int64", "x": "y"}), None).is_err()
        );
    }
}
