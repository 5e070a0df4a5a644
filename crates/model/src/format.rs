//! Words and numbers as a journalist prints them.

/// `3765` → `3,765`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a source counts: CBP and DHS count encounters, border services count entries.
pub fn unit_noun(source: &str) -> &'static str {
    if source.starts_with("cbp") || source.starts_with("ohss") || source.starts_with("dhs") {
        "encounters"
    } else {
        "entries"
    }
}

/// What a figure counts, with whose crossings: "3,765 entries of North Korean citizens", or
/// for a source of departures by destination (`fsb_exits`) "3,113,173 exits to Turkey".
pub fn counted_subject(source: &str, country: &crate::Country, value: u64) -> String {
    if source.ends_with("_exits") {
        format!("{} exits to {}", thousands(value), country.name())
    } else {
        format!(
            "{} {} of {}",
            thousands(value),
            unit_noun(source),
            country.citizens_phrase()
        )
    }
}

/// "for study", "on business", or "" for the total over categories.
pub fn category_phrase(category: &str) -> String {
    match category {
        crate::TOTAL_CATEGORY => String::new(),
        "business" => "on business".into(),
        "official" => "on official business".into(),
        "transit" => "in transit".into(),
        "private" => "for private visits".into(),
        "crew" | "transport_crew" | "service_personnel" => "as transport crew".into(),
        "permanent_residence" => "for permanent residence".into(),
        // The FSB's transport modes.
        "air" => "by air".into(),
        "car" => "by road".into(),
        "rail" => "by rail".into(),
        "ship" => "by sea or river".into(),
        "walk" => "on foot".into(),
        // CBP's and OHSS's encounter types: what the encounter ended in, not a purpose.
        "apprehensions" | "inadmissibles" | "expulsions" => format!("({category})"),
        other => format!("for {}", other.replace('_', " ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3765), "3,765");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn phrases_purposes_and_encounter_types() {
        assert_eq!(category_phrase("study"), "for study");
        assert_eq!(category_phrase("apprehensions"), "(apprehensions)");
        assert_eq!(category_phrase(crate::TOTAL_CATEGORY), "");
        assert_eq!(category_phrase("walk"), "on foot");
    }

    #[test]
    fn names_what_was_counted() {
        let prk = crate::Country::parse("PRK").unwrap();
        assert_eq!(
            counted_subject("fsb", &prk, 3765),
            "3,765 entries of North Korean citizens"
        );
        let tur = crate::Country::parse("TUR").unwrap();
        assert!(counted_subject("fsb_exits", &tur, 3113173).starts_with("3,113,173 exits to "));
    }
}
