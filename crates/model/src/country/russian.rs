//! Country names as Russian statistics print them (FSB, EMISS, MVD), lowercase, and the
//! codes they use for territories ISO 3166 does not list.
//!
//! Abkhazia and South Ossetia: the FSB and the MVD count them as countries, ISO 3166 does not.
//! They get codes from ISO 3166's user-assigned range `XAA`–`XZZ` (which can never collide
//! with a real country), the ones the republished FSB file already uses: `XAB` (`XB`) and
//! `XOS` (`XS`). In the OKSM classifier (Russia's edition of ISO 3166 numeric, used by EMISS)
//! they are 895 and 896.

use super::{Country, CountryError};

/// Territories outside ISO 3166: code, English name, OKSM numeric code.
pub(super) const USER_ASSIGNED: &[(&str, &str, u16)] =
    &[("XAB", "Abkhazia", 895), ("XOS", "South Ossetia", 896)];

pub(super) const ALIASES: &[(&str, &str)] = &[
    // Outside ISO 3166 (see the module comment).
    ("xab", "XAB"),
    ("xb", "XAB"),
    ("abkhazia", "XAB"),
    ("абхазия", "XAB"),
    ("республика абхазия", "XAB"),
    ("xos", "XOS"),
    ("xs", "XOS"),
    ("south ossetia", "XOS"),
    ("южная осетия", "XOS"),
    ("республика южная осетия", "XOS"),
];

impl Country {
    /// A country from its OKSM code (Russia's classifier of countries, ISO 3166 numeric plus
    /// 895 Abkhazia and 896 South Ossetia), as EMISS writes it: `408`, `"008"`.
    pub fn from_oksm(code: &str) -> Result<Country, CountryError> {
        let err = || CountryError {
            value: code.to_string(),
        };
        let t = code.trim();
        if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: u16 = t.parse().map_err(|_| err())?;
        if let Some((alpha3, _, _)) = USER_ASSIGNED.iter().find(|(_, _, oksm)| *oksm == n) {
            return Ok(Country::from_code(alpha3));
        }
        celes::Country::from_value(usize::from(n))
            .map(|c| Country::from_code(c.alpha3))
            .map_err(|_| err())
    }

    /// The English name of a territory outside ISO 3166, for [`Country::name`].
    pub(super) fn user_assigned_name(&self) -> Option<&'static str> {
        USER_ASSIGNED
            .iter()
            .find(|(code, _, _)| *code == self.code())
            .map(|(_, name, _)| *name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oksm_codes_are_iso_numeric_plus_two_territories() {
        assert_eq!(Country::from_oksm("408").unwrap().code(), "PRK");
        assert_eq!(Country::from_oksm("008").unwrap().code(), "ALB");
        assert_eq!(Country::from_oksm("8").unwrap().code(), "ALB");
        assert_eq!(Country::from_oksm("895").unwrap().code(), "XAB");
        assert_eq!(Country::from_oksm("896").unwrap().code(), "XOS");
        for bad in ["", "999", "4080", "PRK", "-4"] {
            assert!(Country::from_oksm(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn abkhazia_and_south_ossetia_read_from_codes_and_names() {
        for v in ["XAB", "XB", "Abkhazia", "Абхазия"] {
            assert_eq!(Country::parse(v).unwrap().code(), "XAB", "{v}");
        }
        for v in ["XOS", "XS", "South Ossetia", "Южная Осетия"] {
            assert_eq!(Country::parse(v).unwrap().code(), "XOS", "{v}");
        }
        assert_eq!(Country::parse("XAB").unwrap().name(), "Abkhazia");
        assert!(!Country::parse("XOS").unwrap().is_aggregate());
    }
}
