//! Resource quantities exactly as Kubernetes parses them: `250m`, `0.5`, `128Mi`, `1G`, `1e7`.
//!
//! The value is kept as an exact integer count of nano-units (10⁻⁹), rounded up as
//! Kubernetes rounds anything finer than a nano-unit. The text the user wrote is kept for
//! output, so a manifest round-trips unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A parsed Kubernetes quantity.
#[derive(Debug, Clone, Eq)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

/// Why a quantity string is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}")]
pub struct QuantityError(pub String);

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses Kubernetes' quantity grammar.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let err = || QuantityError(s.to_string());
        let b = s.as_bytes();
        let mut i = 0;
        let neg = match b.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut mantissa: i128 = 0;
        let mut frac_digits: u32 = 0;
        let mut digits = 0;
        let mut seen_dot = false;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    // Digits past what i128 can hold cannot change a valid quantity's nanos.
                    if mantissa < i128::MAX / 100 {
                        mantissa = mantissa * 10 + i128::from(c - b'0');
                        if seen_dot {
                            frac_digits += 1;
                        }
                    } else if !seen_dot {
                        return Err(err());
                    }
                    digits += 1;
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => break,
            }
            i += 1;
        }
        if digits == 0 {
            return Err(err());
        }
        let suffix = &s[i..];
        // (multiplier numerator as 2^bin * 10^dec)
        let (bin, dec): (u32, i32) = match suffix {
            "" => (0, 0),
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            e if e.starts_with(['e', 'E']) => {
                let exp = &e[1..];
                let ok = !exp.is_empty()
                    && exp
                        .trim_start_matches(['+', '-'])
                        .bytes()
                        .all(|c| c.is_ascii_digit())
                    && exp.len() - exp.trim_start_matches(['+', '-']).len() <= 1
                    && !exp.trim_start_matches(['+', '-']).is_empty();
                if !ok {
                    return Err(err());
                }
                let v: i32 = exp.parse().map_err(|_| err())?;
                if !(-30..=30).contains(&v) {
                    return Err(err());
                }
                (0, v)
            }
            _ => return Err(err()),
        };
        // nanos = mantissa * 2^bin * 10^(dec + 9 - frac_digits), rounded up.
        let mut num = mantissa.checked_mul(1i128 << bin).ok_or_else(err)?;
        let exp10 = dec + 9 - frac_digits as i32;
        let nanos = if exp10 >= 0 {
            let p = 10i128.checked_pow(exp10 as u32).ok_or_else(err)?;
            num = num.checked_mul(p).ok_or_else(err)?;
            num
        } else {
            let p = 10i128.checked_pow((-exp10) as u32).ok_or_else(err)?;
            num / p + i128::from(num % p != 0)
        };
        // Kubernetes caps quantities at 2^63-1 units; beyond that is surely a typo.
        if nanos / NANO > i128::from(i64::MAX) {
            return Err(err());
        }
        Ok(Quantity {
            nanos: if neg { -nanos } else { nanos },
            text: s.to_string(),
        })
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up (`cpu: 250m` → 250, `cpu: 1` → 1000).
    pub fn millis(&self) -> i64 {
        ceil_div(self.nanos, 1_000_000) as i64
    }

    /// The value in whole units, rounded up (`memory: 128Mi` → 134217728).
    pub fn value(&self) -> i64 {
        ceil_div(self.nanos, NANO) as i64
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// A quantity of whole units, written as an integer.
    pub fn from_value(v: i64) -> Self {
        Quantity {
            nanos: i128::from(v) * NANO,
            text: v.to_string(),
        }
    }

    /// A quantity of milli-units, written as Kubernetes would (`500m`, `2`).
    pub fn from_millis(m: i64) -> Self {
        let text = if m % 1000 == 0 {
            (m / 1000).to_string()
        } else {
            format!("{m}m")
        };
        Quantity {
            nanos: i128::from(m) * 1_000_000,
            text,
        }
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 {
        q + 1
    } else {
        q
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::from_value(0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 250m, 0.5, 128Mi or 1G")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::from_value(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                i64::try_from(v)
                    .map(Quantity::from_value)
                    .map_err(|_| E::custom(format!("quantity {v} is too large")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!("quantity {v} is not a number")));
                }
                let mut q = Quantity::parse(&format!("{v}")).map_err(E::custom)?;
                q.text = format!("{v}");
                Ok(q)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> String {
        "Quantity".into()
    }
    /// Inline, so each field shows the description.
    fn is_referenceable() -> bool {
        false
    }
    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        let mut s = schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            ..Default::default()
        };
        s.metadata().description = Some(
            "A fixed-point number with a suffix: 250m, 0.5, 128Mi, 1G (Kubernetes' resource.Quantity)."
                .into(),
        );
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> i128 {
        Quantity::parse(s).unwrap().nanos()
    }

    #[test]
    fn kubernetes_examples() {
        assert_eq!(Quantity::parse("250m").unwrap().millis(), 250);
        assert_eq!(Quantity::parse("0.5").unwrap().millis(), 500);
        assert_eq!(Quantity::parse(".5").unwrap().millis(), 500);
        assert_eq!(Quantity::parse("128Mi").unwrap().value(), 128 << 20);
        assert_eq!(Quantity::parse("1G").unwrap().value(), 1_000_000_000);
        assert_eq!(Quantity::parse("1e7").unwrap().value(), 10_000_000);
        assert_eq!(Quantity::parse("1E3").unwrap().value(), 1000);
        assert_eq!(
            Quantity::parse("1E").unwrap().value(),
            1_000_000_000_000_000_000
        );
        assert_eq!(Quantity::parse("1.5Gi").unwrap().value(), 3 << 29);
        assert_eq!(Quantity::parse("100n").unwrap().nanos(), 100);
        assert_eq!(Quantity::parse("-1").unwrap().value(), -1);
        assert_eq!(n("1000m"), n("1"));
        assert_eq!(
            Quantity::parse("1000m").unwrap(),
            Quantity::parse("1").unwrap()
        );
    }

    #[test]
    fn rounds_up_below_a_nano() {
        assert_eq!(n("0.1n"), 1);
        assert_eq!(Quantity::parse("1.0001m").unwrap().millis(), 2);
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in [
            "", "m", "1.2.3", "12Mb", "1ki", "abc", "1e", "1e+", "--1", "1 Gi", "0x10", "1e99",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn yaml_numbers_deserialize() {
        let q: Vec<Quantity> = serde_json::from_str(r#"[1, 0.5, "128Mi", 10000000.0]"#).unwrap();
        assert_eq!(q[0].millis(), 1000);
        assert_eq!(q[1].millis(), 500);
        assert_eq!(q[3].value(), 10_000_000);
        assert_eq!(serde_json::to_string(&q[2]).unwrap(), "\"128Mi\"");
    }

    proptest::proptest! {
        #[test]
        fn millis_round_trip(m in -1_000_000_000i64..1_000_000_000) {
            let q = Quantity::from_millis(m);
            proptest::prop_assert_eq!(Quantity::parse(q.as_str()).unwrap().millis(), m);
        }

        #[test]
        fn parse_never_panics(s in "[-+0-9.eEinumkKMGTP]{0,12}") {
            let _ = Quantity::parse(&s);
        }
    }
}
