//! What each source counts, in the words a newspaper prints: the noun for its figures and
//! whose figures they are (citizens of a country, departures to it, or arrivals in it). One
//! table for every source; `format.rs` builds the explanations' subjects from it.

/// What the country of a source's figures is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedBy {
    /// The citizenship of the people counted, after the preposition the noun takes:
    /// "entries of North Korean citizens", "detections of illegal border crossings by Iraqi
    /// citizens".
    Citizenship(&'static str),
    /// Where the people counted went: "exits to Turkey".
    Destination,
    /// Where the figures were counted: "arrivals at tourist accommodation in Austria".
    Place,
}

/// What a source's figures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceVocabulary {
    /// The plural noun a figure counts ("entries", "encounters").
    pub noun: &'static str,
    pub counted_by: CountedBy,
}

const fn of(noun: &'static str) -> SourceVocabulary {
    SourceVocabulary {
        noun,
        counted_by: CountedBy::Citizenship("of"),
    }
}

const ENTRIES: SourceVocabulary = of("entries");
const EXITS: SourceVocabulary = SourceVocabulary {
    noun: "exits",
    counted_by: CountedBy::Destination,
};
const ENCOUNTERS: SourceVocabulary = of("encounters");
const REGISTRATIONS: SourceVocabulary = of("registrations");
const DETECTIONS: SourceVocabulary = SourceVocabulary {
    noun: "detections of illegal border crossings",
    counted_by: CountedBy::Citizenship("by"),
};

/// What a source nobody described counts: "records". A figure from an unknown source may
/// count people (asylum applicants), crossings (the FSB counts each entry, not each person),
/// registrations or applications; "records" is true of each of them, since every figure is a
/// count of what an agency recorded, and claims none of them. "people" would be false for
/// crossings, "crossings" false for registrations and applications.
pub const UNKNOWN_SOURCE: SourceVocabulary = of("records");

/// Source names and what they count, read in order: the first whose name is the source, or
/// a prefix of it up to a `_`, `-` or digit (`cbp` for `cbp_sw`, `tour_occ_nin` for
/// `tour_occ_nin2`), wins. Before this table: a source
/// whose last word is `exits` counts exits by destination (`fsb_exits`, `emiss_exits`), one
/// with a word `detections` or `ibc` (illegal border crossings) counts detections.
const SOURCES: &[(&str, SourceVocabulary)] = &[
    // Russia's FSB border service: entries of foreign citizens (EMISS indicator 38479).
    ("fsb", ENTRIES),
    // The generated background series of the demo imitate the FSB's entries by purpose.
    ("synthetic", ENTRIES),
    // Russia's Interior Ministry: migration registrations (`mvd_registration`).
    ("mvd", REGISTRATIONS),
    // US CBP and DHS (OHSS, Border Patrol): encounters (`cbp_sw`, `ohss_usbp`).
    ("cbp", ENCOUNTERS),
    ("ohss", ENCOUNTERS),
    ("dhs", ENCOUNTERS),
    ("usbp", ENCOUNTERS),
    // Frontex: detections of illegal border crossings (its monthly workbook).
    ("frontex", DETECTIONS),
    // Eurostat tourism (tour_occ): the geo column is where the establishments are. The
    // `tour_occ_arn` tables count arrivals, the `tour_occ_nin` tables nights spent; a
    // tourism source that says neither is read as the arrivals table, the one this
    // repository's real file (`eurostat_tour_occ_arn2_sample.tsv`) is.
    (
        "eurostat_tour_occ_nin",
        SourceVocabulary {
            noun: "nights spent at tourist accommodation",
            counted_by: CountedBy::Place,
        },
    ),
    (
        "tour_occ_nin",
        SourceVocabulary {
            noun: "nights spent at tourist accommodation",
            counted_by: CountedBy::Place,
        },
    ),
    (
        "eurostat_tour",
        SourceVocabulary {
            noun: "arrivals at tourist accommodation",
            counted_by: CountedBy::Place,
        },
    ),
    (
        "tour_occ",
        SourceVocabulary {
            noun: "arrivals at tourist accommodation",
            counted_by: CountedBy::Place,
        },
    ),
    // Eurostat asylum (migr_asyappctza): applications by citizenship.
    (
        "eurostat_asy",
        SourceVocabulary {
            noun: "asylum applications",
            counted_by: CountedBy::Citizenship("by"),
        },
    ),
];

/// What `source`'s figures count, by the rules of the table above (`SOURCES`); for a source
/// none of them names, [`UNKNOWN_SOURCE`].
pub fn vocabulary(source: &str) -> SourceVocabulary {
    let words: Vec<&str> = source.split(['_', '-']).collect();
    if words.len() > 1 && words.last() == Some(&"exits") {
        return EXITS;
    }
    if words.iter().any(|w| *w == "detections" || *w == "ibc") {
        return DETECTIONS;
    }
    SOURCES
        .iter()
        .find(|(name, _)| {
            source.strip_prefix(name).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with(|c: char| c == '_' || c == '-' || c.is_ascii_digit())
            })
        })
        .map(|(_, v)| *v)
        .unwrap_or(UNKNOWN_SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_source_says_what_it_counts() {
        for (source, noun) in [
            ("fsb", "entries"),
            ("fsb_exits", "exits"),
            ("emiss_exits", "exits"),
            ("synthetic", "entries"),
            ("mvd_registration", "registrations"),
            ("mvd", "registrations"),
            ("cbp", "encounters"),
            ("cbp_sw", "encounters"),
            ("cbp_nationwide", "encounters"),
            ("ohss_usbp", "encounters"),
            ("dhs", "encounters"),
            ("frontex", "detections of illegal border crossings"),
            ("frontex_monthly", "detections of illegal border crossings"),
            ("eu_detections", "detections of illegal border crossings"),
            ("ibc_monthly", "detections of illegal border crossings"),
            ("eurostat_tour", "arrivals at tourist accommodation"),
            (
                "eurostat_tour_occ_arn2",
                "arrivals at tourist accommodation",
            ),
            (
                "eurostat_tour_occ_nin2",
                "nights spent at tourist accommodation",
            ),
            ("eurostat_asy", "asylum applications"),
        ] {
            assert_eq!(vocabulary(source).noun, noun, "{source}");
        }
    }

    #[test]
    fn says_whose_figures_they_are() {
        assert_eq!(vocabulary("fsb").counted_by, CountedBy::Citizenship("of"));
        assert_eq!(vocabulary("fsb_exits").counted_by, CountedBy::Destination);
        assert_eq!(
            vocabulary("frontex").counted_by,
            CountedBy::Citizenship("by")
        );
        assert_eq!(vocabulary("eurostat_tour").counted_by, CountedBy::Place);
    }

    #[test]
    fn unknown_sources_claim_nothing() {
        for source in ["emiss", "eurostat", "x", "sim", "fsbx", "cbpa", "exits", ""] {
            assert_eq!(vocabulary(source), UNKNOWN_SOURCE, "{source}");
        }
        assert_eq!(UNKNOWN_SOURCE.noun, "records");
    }
}
