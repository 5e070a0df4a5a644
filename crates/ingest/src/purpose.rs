//! The Russian purposes of trip (цель поездки) as the FSB, the MVD and EMISS write them, and
//! the category tokens they stand for: one vocabulary for every reader that meets them (the
//! generic format, `emiss_sdmx` and `ru_sheet`), so a purpose is the same category whichever
//! file it came in.

use borderwatch_model::{TOTAL_CATEGORY, tokenize};

/// Purposes of trip (lowercase, spaces collapsed; `учёба` in both spellings) and their
/// tokens.
pub(crate) const PURPOSES: &[(&str, &str)] = &[
    ("учеба", "study"),
    ("учёба", "study"),
    ("работа", "work"),
    ("туризм", "tourism"),
    ("деловая", "business"),
    ("частная", "private"),
    ("служебная", "official"),
    ("транзит", "transit"),
    ("пмж", "permanent_residence"),
    ("постоянное место жительства", "permanent_residence"),
    ("обслуживающий персонал", "transport_crew"),
    ("иное", "other"),
    ("иные", "other"),
    ("прочие", "other"),
    ("другие", "other"),
];

/// Words for the total of the purposes: the category `total`.
pub(crate) const TOTALS: &[&str] = &["всего", "итого"];

/// The token of a purpose of trip; `text` is lowercase, its spaces collapsed.
pub(crate) fn purpose(text: &str) -> Option<&'static str> {
    PURPOSES
        .iter()
        .find(|(ru, _)| *ru == text)
        .map(|(_, token)| *token)
}

/// A category token from a label: a Russian purpose of trip, or any Latin label tokenized.
pub fn category_token(label: &str) -> Result<String, String> {
    let t = label.trim();
    if t.is_empty() {
        return Err("the category is empty: name the purpose or category, e.g. `study`".into());
    }
    let lower = t
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if let Some(token) = purpose(&lower) {
        return Ok(token.to_string());
    }
    if TOTALS.contains(&lower.as_str()) {
        return Ok(TOTAL_CATEGORY.to_string());
    }
    tokenize(t).ok_or_else(|| {
        format!(
            "`{t}` cannot be a category name: use Latin letters, digits, spaces, `-` and `_` \
             (at most 64), or an FSB purpose of trip (учеба, работа, туризм, деловая, частная, \
             служебная, транзит, ПМЖ, обслуживающий персонал, иное, всего)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_purposes_map_to_tokens() {
        for (ru, token) in [
            ("учеба", "study"),
            ("Учёба", "study"),
            ("работа", "work"),
            ("туризм", "tourism"),
            ("деловая", "business"),
            ("частная", "private"),
            ("служебная", "official"),
            ("транзит", "transit"),
            ("ПМЖ", "permanent_residence"),
            ("Обслуживающий  персонал", "transport_crew"),
            ("ВСЕГО", TOTAL_CATEGORY),
            ("Transport crew", "transport_crew"),
        ] {
            assert_eq!(category_token(ru).as_deref(), Ok(token), "{ru}");
        }
    }

    #[test]
    fn every_word_for_other_is_one_category() {
        for ru in ["иное", "Иные", "прочие", "другие"] {
            assert_eq!(category_token(ru).as_deref(), Ok("other"), "{ru}");
        }
    }
}
