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
    }
}
