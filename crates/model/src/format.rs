//! Words and numbers as a journalist prints them: figures with thousands separators, what a
//! figure counts (from the source vocabulary) and categories as phrases.

use crate::vocabulary::CountedBy;

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

/// What a source counts, as a plural noun: "entries" (the FSB), "encounters" (CBP, DHS),
/// "registrations" (the MVD), "detections of illegal border crossings" (Frontex), "records"
/// for a source nobody described. The table is [`vocabulary`](crate::vocabulary()).
pub fn unit_noun(source: &str) -> &'static str {
    crate::vocabulary(source).noun
}

/// What a source's series counts, without a figure: "entries of North Korean citizens",
/// "exits to Turkey", "arrivals at tourist accommodation in Austria".
pub fn counted_what(source: &str, country: &crate::Country) -> String {
    let v = crate::vocabulary(source);
    match v.counted_by {
        CountedBy::Citizenship(preposition) => {
            format!("{} {preposition} {}", v.noun, country.citizens_phrase())
        }
        CountedBy::Destination if country.is_aggregate() => {
            format!("{} to {}", v.noun, country.name())
        }
        CountedBy::Destination => format!("{} to {}", v.noun, country.name_in_sentence()),
        CountedBy::Place if country.is_aggregate() => format!("{} in {}", v.noun, country.name()),
        CountedBy::Place => format!("{} in {}", v.noun, country.name_in_sentence()),
    }
}

/// What a figure counts, with whose crossings: "3,765 entries of North Korean citizens", or
/// for a source of departures by destination (`fsb_exits`) "3,113,173 exits to Turkey".
pub fn counted_subject(source: &str, country: &crate::Country, value: u64) -> String {
    format!("{} {}", thousands(value), counted_what(source, country))
}

/// Purposes of trip and the FSB's transport modes, as phrases.
const PHRASES: &[(&str, &str)] = &[
    ("study", "for study"),
    ("work", "for work"),
    ("tourism", "for tourism"),
    ("business", "on business"),
    ("official", "on official business"),
    ("transit", "in transit"),
    ("private", "for private visits"),
    ("other", "for other purposes"),
    ("crew", "as transport crew"),
    ("transport_crew", "as transport crew"),
    ("service_personnel", "as transport crew"),
    ("permanent_residence", "for permanent residence"),
    // The FSB's transport modes.
    ("air", "by air"),
    ("car", "by road"),
    ("rail", "by rail"),
    ("ship", "by sea or river"),
    ("walk", "on foot"),
    // Frontex's border locations on their own.
    ("land", "by land"),
    ("sea", "by sea"),
];

/// Words of a route's name that are proper nouns.
const PROPER: &[(&str, &str)] = &[
    ("mediterranean", "Mediterranean"),
    ("balkan", "Balkan"),
    ("balkans", "Balkans"),
    ("african", "African"),
    ("atlantic", "Atlantic"),
    ("aegean", "Aegean"),
    ("adriatic", "Adriatic"),
    ("baltic", "Baltic"),
    ("arctic", "Arctic"),
    ("channel", "Channel"),
    ("english", "English"),
];

/// Frontex's border locations, as they end a route category.
const MODES: &[(&str, &str)] = &[("land", "by land"), ("sea", "by sea"), ("air", "by air")];

/// A category as words after the subject: "for study", "on business", "by air", "on the
/// eastern land border route", "(apprehensions)", or "" for the total over categories.
///
/// - purposes and transport modes read as phrases (`PHRASES`);
/// - a category with the word `route` reads "on the … route", with a border location after
///   it ("by sea") unless the route's name already says it (`eastern_land_border_route_land`
///   is "on the eastern land border route", `black_sea_route_sea` "on the Black Sea route");
///   one with the word `border` (and no route) reads "at the … border";
/// - CBP's and OHSS's encounter types say what the encounter ended in, in brackets;
/// - anything else reads "in category …", underscores as spaces: a category nobody
///   described is not claimed to be a purpose.
pub fn category_phrase(category: &str) -> String {
    if category == crate::TOTAL_CATEGORY {
        return String::new();
    }
    if let Some((_, phrase)) = PHRASES.iter().find(|(c, _)| *c == category) {
        return (*phrase).to_string();
    }
    // CBP's and OHSS's encounter types: what the encounter ended in, not a purpose.
    if matches!(category, "apprehensions" | "inadmissibles" | "expulsions") {
        return format!("({category})");
    }
    let words: Vec<&str> = category
        .split(['_', '-'])
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(route) = words.iter().position(|w| *w == "route" || *w == "routes") {
        return located("on the", &words[..=route], &words[route + 1..]);
    }
    if let Some(border) = words.iter().position(|w| *w == "border" || *w == "borders") {
        return located("at the", &words[..=border], &words[border + 1..]);
    }
    if let [first @ .., last] = words.as_slice()
        && *first == ["other"]
        && let Some((_, mode)) = MODES.iter().find(|(m, _)| m == last)
    {
        return format!("on other routes {mode}");
    }
    format!("in category {}", words.join(" "))
}

/// "on the eastern Mediterranean route by sea": `name` (ending in `route` or `border`) after
/// `lead`, then what follows it, a border location the name already says left out.
fn located(lead: &str, name: &[&str], rest: &[&str]) -> String {
    let mut out = lead.to_string();
    for (i, w) in name.iter().enumerate() {
        out.push(' ');
        let next = name.get(i + 1);
        match PROPER.iter().find(|(p, _)| p == w) {
            Some((_, proper)) => out.push_str(proper),
            None if *w == "black" && next == Some(&"sea") => out.push_str("Black"),
            None if i > 0 && name[i - 1] == "black" && *w == "sea" => out.push_str("Sea"),
            None => out.push_str(&place_word(w)),
        }
    }
    for w in rest {
        if name.contains(w) {
            continue;
        }
        out.push(' ');
        match MODES.iter().find(|(m, _)| m == w) {
            Some((_, mode)) => out.push_str(mode),
            None => out.push_str(&place_word(w)),
        }
    }
    out
}

/// A word of a route's name: a country's name capitalised ("from albania to greece" →
/// "from Albania to Greece"), any other word as it is.
fn place_word(word: &str) -> String {
    if word.len() >= 4
        && let Ok(country) = crate::Country::parse(word)
        && !country.is_aggregate()
        && country.name().eq_ignore_ascii_case(word)
    {
        return country.name();
    }
    word.to_string()
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

    #[test]
    fn subjects_follow_the_source_vocabulary() {
        let c = |code: &str| crate::Country::parse(code).unwrap();
        assert_eq!(
            counted_subject("cbp_sw", &c("VEN"), 1200),
            "1,200 encounters of Venezuelan citizens"
        );
        assert_eq!(
            counted_subject("mvd_registration", &c("CHN"), 5),
            "5 registrations of Chinese citizens"
        );
        assert_eq!(
            counted_subject("frontex", &c("IRQ"), 91),
            "91 detections of illegal border crossings by Iraqi citizens"
        );
        assert_eq!(
            counted_subject("fsb_exits", &c("TUR"), 3113173),
            "3,113,173 exits to Turkey"
        );
        assert_eq!(
            counted_subject("fsb_exits", &c("USA"), 10),
            "10 exits to the United States"
        );
        assert_eq!(
            counted_subject("eurostat_tour", &c("AUT"), 4189792),
            "4,189,792 arrivals at tourist accommodation in Austria"
        );
        assert_eq!(
            counted_subject("someone", &c("SDN"), 7),
            "7 records of Sudanese citizens"
        );
        assert_eq!(
            counted_what("fsb", &crate::Country::TOTAL),
            "entries of travellers of every citizenship"
        );
        assert_eq!(unit_noun("ohss_usbp"), "encounters");
    }

    #[test]
    fn routes_read_as_words() {
        for (category, phrase) in [
            (
                "eastern_land_border_route",
                "on the eastern land border route",
            ),
            (
                "eastern_land_border_route_land",
                "on the eastern land border route",
            ),
            (
                "eastern_mediterranean_route_sea",
                "on the eastern Mediterranean route by sea",
            ),
            (
                "eastern_mediterranean_route_land",
                "on the eastern Mediterranean route by land",
            ),
            ("western_balkan_route", "on the western Balkan route"),
            ("black_sea_route_sea", "on the Black Sea route"),
            (
                "circular_route_from_albania_to_greece_land",
                "on the circular route from Albania to Greece by land",
            ),
            ("western_african_route", "on the western African route"),
            ("eastern_borders", "at the eastern borders"),
            ("land_border_air", "at the land border by air"),
            ("other_sea", "on other routes by sea"),
            ("sea", "by sea"),
        ] {
            assert_eq!(category_phrase(category), phrase, "{category}");
        }
    }

    #[test]
    fn purposes_keep_their_phrases_and_unknown_tokens_are_no_purpose() {
        assert_eq!(category_phrase("business"), "on business");
        assert_eq!(category_phrase("work"), "for work");
        assert_eq!(category_phrase("tourism"), "for tourism");
        assert_eq!(category_phrase("other"), "for other purposes");
        assert_eq!(category_phrase("transport_crew"), "as transport crew");
        assert_eq!(category_phrase("inadmissibles"), "(inadmissibles)");
        assert_eq!(category_phrase("dom_i551"), "in category dom i551");
        assert_eq!(category_phrase("t_de"), "in category t de");
        assert_eq!(
            category_phrase("family-reunion"),
            "in category family reunion"
        );
    }
}
