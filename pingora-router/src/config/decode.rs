//! The typed decoding pass of a config document: serde with Go's decoder
//! semantics (no duplicate keys, no `null`, exact field names, int64 numbers).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{code, CircuitBreaker, ConfigError, HealthCheck, Retry, Timeouts};

pub(super) fn decode(doc: &[u8]) -> Result<ConfigDoc, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_slice(doc);
    Object::<ConfigDoc>::deserialize(&mut deserializer)
        .and_then(|doc| deserializer.end().map(|()| doc.0))
        .map_err(|err| {
            let text = err.to_string();
            match text.strip_prefix("unknown field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    ConfigError::new(code::UNKNOWN_FIELD, format!("unknown field {name:?}"))
                }
                None => ConfigError::new(code::PARSE_ERROR, text),
            }
        })
}

// The document as decoded, before validation: free-form strings where the
// validated types have enums, zero values for absent fields (as Go decodes),
// so that every semantic fault reaches `validate` and gets its own code.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigDoc {
    #[serde(default)]
    pub(super) version: String,
    #[serde(default)]
    pub(super) default_placement: String,
    #[serde(default, deserialize_with = "strict::unique_map")]
    pub(super) routes: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "strict::unique_map")]
    pub(super) placements: BTreeMap<String, Object<PlacementDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlacementDoc {
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) endpoint: String,
    #[serde(default)]
    pub(super) fallback: String,
    #[serde(default, deserialize_with = "strict::present")]
    pub(super) timeouts: Option<Object<Timeouts>>,
    #[serde(default, deserialize_with = "strict::present")]
    pub(super) health_check: Option<Object<HealthCheck>>,
    #[serde(default, deserialize_with = "strict::present")]
    pub(super) circuit_breaker: Option<Object<CircuitBreaker>>,
    #[serde(default, deserialize_with = "strict::present")]
    pub(super) rate_limit: Option<Object<RateLimitDoc>>,
    #[serde(default, deserialize_with = "strict::present")]
    pub(super) retry: Option<Object<Retry>>,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub(super) concurrency_limit: i64,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub(super) max_request_body_bytes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitDoc {
    #[serde(default)]
    pub(super) requests_per_second: f64,
    #[serde(default, deserialize_with = "go_int::plain")]
    pub(super) burst: i64,
    #[serde(default)]
    pub(super) per: String,
}

/// What serde alone would let through and Go's strict walk does not.
pub(super) mod strict {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Error, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    /// An optional field that, when present, must not be `null` (serde reads
    /// null as absent; the contract rejects it so that `null` never means
    /// two things).
    pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(deserializer).map(Some)
    }

    /// A JSON object as a map that rejects a repeated key, at the key (serde
    /// would let the last one win).
    pub fn unique_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, V>, D::Error> {
        struct UniqueMap<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
            type Value = BTreeMap<String, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(A::Error::custom(format!("duplicate key {key:?}")));
                    }
                    let value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(UniqueMap(PhantomData))
    }
}

/// A JSON object decoded into `T`. serde's derived structs also accept a
/// JSON array of the field values; Go's decoder (and the contract) take only
/// objects, so struct-typed values go through this wrapper.
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(ObjectOnly(deserializer)).map(Object)
    }
}

/// Forwards everything, but asks for a map where a struct is wanted.
pub(super) struct ObjectOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Integer fields decode like Go's `strconv.ParseInt` on the number's text:
/// `-0` is 0, while `1.0`, `1e3` and anything outside int64 are type errors.
/// (serde_json alone reads `-0` as a float, so the raw text is parsed here.)
pub(super) mod go_int {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::value::RawValue;

    pub fn plain<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        text.parse::<i64>().map_err(|_| {
            let kind = match text.as_bytes().first() {
                Some(b'-' | b'0'..=b'9') => "number",
                Some(b'"') => "string",
                Some(b'{') => "object",
                Some(b'[') => "array",
                _ => "bool",
            };
            D::Error::custom(format!("expected int64, got JSON {kind} {text:.40}"))
        })
    }

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        plain(deserializer).map(Some)
    }
}
