//! Checked names and quantities: each is validated once, when parsed from a flag, so nothing
//! downstream re-checks it and nothing unchecked reaches a command line or a shell string.

use std::fmt;
use std::str::FromStr;

/// Kubernetes limits a namespace (an RFC 1123 label) to 63 characters.
const NAMESPACE_MAX: usize = 63;
/// Helm limits release names to 53 characters (room for suffixes on derived names).
const RELEASE_MAX: usize = 53;
/// PostgreSQL truncates identifiers at 63 bytes.
const IDENTIFIER_MAX: usize = 63;

/// A Kubernetes namespace name (RFC 1123 label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace(String);

/// A Helm release name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseName(String);

/// A PostgreSQL database or role name pgk8s creates or connects to: lowercase letters, digits
/// and underscores, not starting with a digit. Safe to embed in SQL and shell strings unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identifier(String);

/// A Kubernetes resource quantity such as `8Gi`, `500m` or `1.5G`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity(String);

/// A Kubernetes object name such as a StorageClass or Secret (RFC 1123 subdomain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectName(String);

macro_rules! string_newtype {
    ($($name:ident),*) => {$(
        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    )*};
}

string_newtype!(Namespace, ReleaseName, Identifier, Quantity, ObjectName);

impl FromStr for Namespace {
    type Err = String;

    fn from_str(text: &str) -> Result<Namespace, String> {
        check_dns_label(text, NAMESPACE_MAX, "namespace")?;
        Ok(Namespace(text.to_string()))
    }
}

impl FromStr for ReleaseName {
    type Err = String;

    fn from_str(text: &str) -> Result<ReleaseName, String> {
        check_dns_label(text, RELEASE_MAX, "release name")?;
        Ok(ReleaseName(text.to_string()))
    }
}

impl FromStr for ObjectName {
    type Err = String;

    fn from_str(text: &str) -> Result<ObjectName, String> {
        if text.len() > 253 {
            return Err(format!("{:?} is longer than 253 characters", text));
        }
        for label in text.split('.') {
            check_dns_label(label, NAMESPACE_MAX, "name").map_err(|_| {
                format!(
                    "{text:?} is not a valid Kubernetes name: use lowercase letters, digits, '-' \
                     and '.', starting and ending with a letter or digit"
                )
            })?;
        }
        Ok(ObjectName(text.to_string()))
    }
}

impl FromStr for Identifier {
    type Err = String;

    fn from_str(text: &str) -> Result<Identifier, String> {
        let mut chars = text.chars();
        let valid_start = chars
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == '_');
        let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_start || !valid_rest || text.len() > IDENTIFIER_MAX {
            return Err(format!(
                "{text:?} is not a valid name: use 1-{IDENTIFIER_MAX} lowercase letters, digits \
                 and '_', not starting with a digit"
            ));
        }
        Ok(Identifier(text.to_string()))
    }
}

impl Quantity {
    /// The amount in base units (bytes for storage), to compare sizes written in different
    /// units (`20Gi` > `16G`). Milli-units round down.
    pub fn amount(&self) -> f64 {
        let units: [(&str, f64); 13] = [
            ("Ki", 1024.0),
            ("Mi", 1024f64.powi(2)),
            ("Gi", 1024f64.powi(3)),
            ("Ti", 1024f64.powi(4)),
            ("Pi", 1024f64.powi(5)),
            ("Ei", 1024f64.powi(6)),
            ("m", 0.001),
            ("k", 1e3),
            ("M", 1e6),
            ("G", 1e9),
            ("T", 1e12),
            ("P", 1e15),
            ("E", 1e18),
        ];
        let (number, factor) = units
            .iter()
            .find_map(|(suffix, factor)| {
                self.0.strip_suffix(suffix).map(|number| (number, *factor))
            })
            .unwrap_or((self.0.as_str(), 1.0));
        number.parse::<f64>().unwrap_or(0.0) * factor
    }

    /// A quantity written in pgk8s's own source (a profile's default), valid by construction.
    pub fn known(text: &'static str) -> Quantity {
        debug_assert!(text.parse::<Quantity>().is_ok(), "{text}");
        Quantity(text.to_string())
    }
}

impl FromStr for Quantity {
    type Err = String;

    fn from_str(text: &str) -> Result<Quantity, String> {
        let suffixes = [
            "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
        ];
        let number = suffixes
            .iter()
            .find_map(|suffix| text.strip_suffix(suffix).filter(|rest| !rest.is_empty()))
            .unwrap_or(text);
        let digits_ok = !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            && number.matches('.').count() <= 1
            && !number.starts_with('.')
            && !number.ends_with('.');
        let positive = number.parse::<f64>().is_ok_and(|value| value > 0.0);
        if !digits_ok || !positive {
            return Err(format!(
                "{text:?} is not a valid quantity: use a positive number with an optional unit, \
                 e.g. 8Gi, 512Mi or 500m"
            ));
        }
        Ok(Quantity(text.to_string()))
    }
}

fn check_dns_label(text: &str, max: usize, what: &str) -> Result<(), String> {
    let valid_chars = text
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let valid_ends = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if text.is_empty() || !valid_chars || !valid_ends {
        return Err(format!(
            "{text:?} is not a valid {what}: use lowercase letters, digits and '-', starting and \
             ending with a letter or digit"
        ));
    }
    if text.len() > max {
        return Err(format!(
            "{what} {text:?} is {} characters long; the limit is {max}",
            text.len()
        ));
    }
    Ok(())
}

/// Parses a duration such as `90s`, `5m` or `1h30m` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let parsed = match text.parse::<u64>() {
        Ok(seconds) => Ok(std::time::Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(text),
    };
    parsed.map_err(|_| format!("{text:?} is not a valid duration: use e.g. 90s, 5m or 1h30m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_across_units() {
        let size = |text: &str| text.parse::<Quantity>().unwrap().amount();
        assert_eq!(size("8Gi"), 8.0 * 1024f64.powi(3));
        assert!(size("20Gi") > size("16G"));
        assert!(size("1Ti") > size("1000Gi"));
        assert_eq!(size("500m"), 0.5);
        assert_eq!(size("512"), 512.0);
    }

    fn check<T: FromStr>(input: &str, valid: bool) {
        assert_eq!(input.parse::<T>().is_ok(), valid, "{input:?}");
    }

    #[test]
    fn namespaces_follow_rfc_1123() {
        for good in ["learnflow", "a", "team-1", &"x".repeat(63)] {
            check::<Namespace>(good, true);
        }
        for bad in [
            "",
            "Learnflow",
            "-lead",
            "trail-",
            "under_score",
            "dot.ted",
            "ünï",
            &"x".repeat(64),
        ] {
            check::<Namespace>(bad, false);
        }
    }

    #[test]
    fn releases_are_at_most_53_characters() {
        check::<ReleaseName>(&"r".repeat(53), true);
        check::<ReleaseName>(&"r".repeat(54), false);
        check::<ReleaseName>("db", true);
    }

    #[test]
    fn identifiers_are_safe_sql_names() {
        for good in ["learnflow", "_x", "app_2"] {
            check::<Identifier>(good, true);
        }
        for bad in [
            "",
            "2fast",
            "Learn",
            "a-b",
            "a;drop",
            "a b",
            &"x".repeat(64),
        ] {
            check::<Identifier>(bad, false);
        }
    }

    #[test]
    fn quantities() {
        for good in ["8Gi", "500m", "1.5G", "100", "20Mi"] {
            check::<Quantity>(good, true);
        }
        for bad in ["", "Gi", "8GB", "-1Gi", "0", "1..5Gi", "eight", "8 Gi"] {
            check::<Quantity>(bad, false);
        }
    }

    #[test]
    fn object_names() {
        check::<ObjectName>("fast-ssd", true);
        check::<ObjectName>("gp3.csi", true);
        check::<ObjectName>("Fast", false);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert!(parse_duration("soon").is_err());
    }
}
