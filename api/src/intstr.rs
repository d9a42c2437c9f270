//! `IntOrString`: `targetPort: 8080` or `targetPort: http`, `maxSurge: 1` or `maxSurge: 25%`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A value that is either an integer or a string, as Kubernetes' `intstr.IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// An integer.
    Int(i32),
    /// A string (a port name, or a percentage like `25%`).
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl IntOrString {
    /// Resolves an integer or a percentage against `total` as Kubernetes'
    /// `GetScaledValueFromIntOrPercent` does (`round_up` for maxSurge, down for maxUnavailable).
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Result<i32, String> {
        match self {
            IntOrString::Int(i) => Ok(*i),
            IntOrString::String(s) => {
                let p = s
                    .strip_suffix('%')
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| format!("invalid value for IntOrString: invalid type: string {s:?}, expected an integer or a percentage like \"25%\""))?;
                let v = p * i64::from(total);
                let v = if round_up {
                    (v + 99).div_euclid(100)
                } else {
                    v.div_euclid(100)
                };
                i32::try_from(v).map_err(|_| format!("{s} of {total} is out of range"))
            }
        }
    }

    /// The percentage, when this is a string of the form `N%`.
    pub fn percent(&self) -> Option<Result<i64, ()>> {
        match self {
            IntOrString::Int(_) => None,
            IntOrString::String(s) => {
                Some(s.strip_suffix('%').and_then(|n| n.parse().ok()).ok_or(()))
            }
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => s.serialize_i32(*i),
            IntOrString::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range for a 32-bit integer")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range for a 32-bit integer")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for IntOrString {
    fn schema_name() -> String {
        "IntOrString".into()
    }
    /// Inline, so each field shows the description.
    fn is_referenceable() -> bool {
        false
    }
    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        // As Kubernetes' schema writes it: a string of format int-or-string.
        let mut s = schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            format: Some("int-or-string".into()),
            ..Default::default()
        };
        s.metadata().description =
            Some("An integer or a string (a port name, a percentage such as 25%).".into());
        s.extensions
            .insert("x-kubernetes-int-or-string".into(), serde_json::json!(true));
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_scale_like_kubernetes() {
        let p = IntOrString::String("25%".into());
        assert_eq!(p.scaled_value(10, true), Ok(3));
        assert_eq!(p.scaled_value(10, false), Ok(2));
        assert_eq!(IntOrString::Int(4).scaled_value(10, true), Ok(4));
        assert!(IntOrString::String("x%".into())
            .scaled_value(10, true)
            .is_err());
    }

    #[test]
    fn deserializes_both_forms() {
        let v: Vec<IntOrString> = serde_json::from_str(r#"[8080, "http", "25%"]"#).unwrap();
        assert_eq!(v[0], IntOrString::Int(8080));
        assert_eq!(v[1], IntOrString::String("http".into()));
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"[8080,"http","25%"]"#);
    }
}
