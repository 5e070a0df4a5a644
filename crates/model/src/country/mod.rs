//! Countries: every spelling a source uses, normalized to ISO 3166-1 alpha-3.
//!
//! The code tables come from the `celes` crate; this module adds the aliases that official
//! statistics use (agency spellings, Russian names) and the words a headline needs (demonyms).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod agency;
mod aliases;
mod russian;

/// An ISO 3166-1 alpha-3 code, upper case (`PRK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 3]);

/// Why a country could not be recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a known country: use an ISO 3166-1 alpha-2 or alpha-3 code or an English or Russian name"
)]
pub struct CountryError {
    pub value: String,
}

/// Demonyms for the countries that border statistics name most; others read "citizens of X".
const DEMONYMS: &[(&str, &str)] = &[
    ("AFG", "Afghan"),
    ("ARM", "Armenian"),
    ("AZE", "Azerbaijani"),
    ("BLR", "Belarusian"),
    ("BRA", "Brazilian"),
    ("CHN", "Chinese"),
    ("COL", "Colombian"),
    ("CUB", "Cuban"),
    ("DEU", "German"),
    ("ECU", "Ecuadorian"),
    ("EST", "Estonian"),
    ("FIN", "Finnish"),
    ("FRA", "French"),
    ("GBR", "British"),
    ("GEO", "Georgian"),
    ("GTM", "Guatemalan"),
    ("HND", "Honduran"),
    ("HTI", "Haitian"),
    ("IND", "Indian"),
    ("IRN", "Iranian"),
    ("ISR", "Israeli"),
    ("ITA", "Italian"),
    ("JPN", "Japanese"),
    ("KAZ", "Kazakh"),
    ("KGZ", "Kyrgyz"),
    ("KOR", "South Korean"),
    ("LTU", "Lithuanian"),
    ("LVA", "Latvian"),
    ("MDA", "Moldovan"),
    ("MEX", "Mexican"),
    ("MNG", "Mongolian"),
    ("NIC", "Nicaraguan"),
    ("POL", "Polish"),
    ("PRK", "North Korean"),
    ("RUS", "Russian"),
    ("SLV", "Salvadoran"),
    ("SYR", "Syrian"),
    ("TJK", "Tajik"),
    ("TKM", "Turkmen"),
    ("TUR", "Turkish"),
    ("UKR", "Ukrainian"),
    ("USA", "American"),
    ("UZB", "Uzbek"),
    ("VEN", "Venezuelan"),
    ("VNM", "Vietnamese"),
];

/// Every alias table as one map, built on first use.
fn alias_table() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for (alias, code) in aliases::ALIASES
            .iter()
            .chain(russian::ALIASES)
            .chain(agency::ALIASES)
            .chain(AGGREGATE_ALIASES)
        {
            table.insert(*alias, *code);
        }
        table
    })
}

/// Words sources use for rows that are not one country.
const AGGREGATE_ALIASES: &[(&str, &str)] = &[
    ("zzt", "ZZT"),
    ("total", "ZZT"),
    ("all countries", "ZZT"),
    ("всего", "ZZT"),
    ("итого", "ZZT"),
    ("zzo", "ZZO"),
    ("other", "ZZO"),
    ("others", "ZZO"),
    ("other countries", "ZZO"),
    ("unknown", "ZZO"),
    ("прочие", "ZZO"),
    ("другие страны", "ZZO"),
];

impl Country {
    /// Not a country: every citizenship together, as a source's total row gives it. A code
    /// from ISO 3166's user-assigned range, so it can never collide with a real country.
    pub const TOTAL: Country = Country(*b"ZZT");
    /// Not a country: citizenships a source lumps together ("other", "unknown").
    pub const OTHER: Country = Country(*b"ZZO");

    /// True for [`Country::TOTAL`] and [`Country::OTHER`]: rows kept apart from countries.
    pub fn is_aggregate(&self) -> bool {
        *self == Country::TOTAL || *self == Country::OTHER
    }

    /// Reads a country from an ISO alpha-2 or alpha-3 code, an English name, or a known alias.
    pub fn parse(value: &str) -> Result<Country, CountryError> {
        let err = || CountryError {
            value: value.to_string(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(err());
        }
        let lower = trimmed.to_lowercase();
        if let Some(code) = alias_table().get(lower.as_str()) {
            return Ok(Country::from_code(code));
        }
        let found = match trimmed.len() {
            2 if trimmed.is_ascii() => celes::Country::from_alpha2(&lower).ok(),
            3 if trimmed.is_ascii() => celes::Country::from_alpha3(&lower).ok(),
            _ => None,
        }
        .or_else(|| {
            let squashed: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
            celes::Country::from_name(&squashed)
                .or_else(|_| celes::Country::from_alias(&squashed))
                .ok()
        });
        found.map(|c| Country::from_code(c.alpha3)).ok_or_else(err)
    }

    fn from_code(code: &str) -> Country {
        let b = code.as_bytes();
        Country([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ])
    }

    pub fn code(&self) -> &str {
        // Only ever built from ASCII codes.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The country's English name from the ISO tables.
    pub fn name(&self) -> String {
        if *self == Country::TOTAL {
            return "all countries".into();
        }
        if *self == Country::OTHER {
            return "other countries".into();
        }
        if let Some(name) = self.user_assigned_name() {
            return name.into();
        }
        celes::Country::from_alpha3(self.code().to_lowercase())
            .map(|c| c.long_name.to_string())
            .unwrap_or_else(|_| self.code().to_string())
    }

    /// "North Korean citizens", or "citizens of Peru" where no demonym is on file.
    pub fn citizens_phrase(&self) -> String {
        if *self == Country::TOTAL {
            return "travellers of every citizenship".into();
        }
        if *self == Country::OTHER {
            return "citizens of other countries".into();
        }
        match DEMONYMS.iter().find(|(code, _)| *code == self.code()) {
            Some((_, demonym)) => format!("{demonym} citizens"),
            None => format!("citizens of {}", self.name()),
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Country {
    type Err = CountryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::parse(s)
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Country::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codes_names_and_aliases() {
        for v in [
            "PRK",
            "prk",
            "KP",
            "North Korea",
            "КНДР (Северная Корея)",
            " kp ",
        ] {
            assert_eq!(Country::parse(v).unwrap().code(), "PRK", "{v}");
        }
        assert_eq!(Country::parse("Germany").unwrap().code(), "DEU");
        assert_eq!(Country::parse("DE").unwrap().code(), "DEU");
    }

    #[test]
    fn keeps_totals_and_others_apart_from_countries() {
        assert_eq!(Country::parse("ВСЕГО").unwrap(), Country::TOTAL);
        assert_eq!(Country::parse("Other").unwrap(), Country::OTHER);
        assert!(Country::TOTAL.is_aggregate() && Country::OTHER.is_aggregate());
        assert!(!Country::parse("PRK").unwrap().is_aggregate());
        assert_eq!(Country::TOTAL.to_string(), "ZZT");
        let back: Country = serde_json::from_str("\"ZZO\"").unwrap();
        assert_eq!(back, Country::OTHER);
    }

    #[test]
    fn rejects_unknown_names() {
        assert!(Country::parse("Atlantis").is_err());
        assert!(Country::parse("").is_err());
        assert!(Country::parse("XX").is_err());
    }

    #[test]
    fn phrases_citizens_for_headlines() {
        assert_eq!(
            Country::parse("PRK").unwrap().citizens_phrase(),
            "North Korean citizens"
        );
        assert!(
            Country::parse("PER")
                .unwrap()
                .citizens_phrase()
                .starts_with("citizens of")
        );
    }
}
