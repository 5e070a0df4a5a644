//! Country names as a newspaper prints them, where the ISO tables' formal names differ
//! ("The Sudan", "Islamic Republic Of Iran", "Coted Ivoire"), and which names take "the" in
//! a sentence. [`Country::name`](super::Country::name) reads this table first.
//!
//! House style: the short name a wire-service story uses in running text (AP and Reuters
//! practice): no formal prefixes or suffixes ("Republic of", "Plurinational State of"), no
//! inverted "Korea, Republic of" forms and no brackets; "North Korea" and "South Korea",
//! "Russia", "Syria", "Iran", "Laos", "Vietnam", "Moldova", "Tanzania", "Venezuela",
//! "Britain" (both agencies' word for the United Kingdom in a story), "Turkey", "East
//! Timor", "Cape Verde", "Czech Republic", "DR Congo" and "Republic of Congo" for the two
//! Congos, "Vatican City". Accents are kept ("Côte d'Ivoire", the country's own spelling,
//! as Frontex and Eurostat print it; "São Tomé and Príncipe", "Curaçao", "Réunion"); joining
//! words are lowercase ("Bosnia and Herzegovina", "Isle of Man").
//!
//! The name is the label form ("United States", "Netherlands"): it heads a list or a page.
//! Names that a sentence writes with "the" ("exits to the United States", "citizens of the
//! Netherlands") are marked `true`; [`Country::name_in_sentence`](super::Country::name_in_sentence)
//! adds it.

/// ISO 3166-1 alpha-3 code (or an ISO 3166-3 code an alias maps to), the name, and whether a
/// sentence writes it with "the".
pub(super) const NAMES: &[(&str, &str, bool)] = &[
    ("ALA", "Åland Islands", true),
    ("ARE", "United Arab Emirates", true),
    ("ATF", "French Southern Territories", true),
    ("ATG", "Antigua and Barbuda", false),
    ("BES", "Caribbean Netherlands", true),
    ("BHS", "Bahamas", true),
    ("BIH", "Bosnia and Herzegovina", false),
    ("BLM", "Saint Barthélemy", false),
    ("BRN", "Brunei", false),
    ("CAF", "Central African Republic", true),
    ("CCK", "Cocos Islands", true),
    ("CIV", "Côte d'Ivoire", false),
    ("COD", "DR Congo", false),
    ("COG", "Republic of Congo", false),
    ("COK", "Cook Islands", true),
    ("COM", "Comoros", false),
    ("CPV", "Cape Verde", false),
    ("CUW", "Curaçao", false),
    ("CYM", "Cayman Islands", true),
    ("CZE", "Czech Republic", true),
    ("DOM", "Dominican Republic", true),
    ("FLK", "Falkland Islands", true),
    ("FRO", "Faroe Islands", true),
    ("FSM", "Micronesia", false),
    ("GBR", "Britain", false),
    ("GMB", "Gambia", false),
    ("GNB", "Guinea-Bissau", false),
    ("HMD", "Heard Island and McDonald Islands", false),
    ("IMN", "Isle of Man", true),
    ("IOT", "British Indian Ocean Territory", true),
    ("IRN", "Iran", false),
    ("KNA", "Saint Kitts and Nevis", false),
    ("KOR", "South Korea", false),
    ("LAO", "Laos", false),
    ("MAF", "Saint Martin", false),
    ("MDA", "Moldova", false),
    ("MHL", "Marshall Islands", true),
    ("MKD", "North Macedonia", false),
    ("MNP", "Northern Mariana Islands", true),
    ("NER", "Niger", false),
    ("NLD", "Netherlands", true),
    ("PCN", "Pitcairn Islands", true),
    ("PHL", "Philippines", true),
    ("PRK", "North Korea", false),
    ("PSE", "Palestinian territories", true),
    ("REU", "Réunion", false),
    ("RUS", "Russia", false),
    ("SCG", "Serbia and Montenegro", false),
    ("SDN", "Sudan", false),
    ("SGS", "South Georgia and the South Sandwich Islands", false),
    ("SHN", "Saint Helena", false),
    ("SJM", "Svalbard and Jan Mayen", false),
    ("SLB", "Solomon Islands", true),
    ("SPM", "Saint Pierre and Miquelon", false),
    ("STP", "São Tomé and Príncipe", false),
    ("SXM", "Sint Maarten", false),
    ("SYR", "Syria", false),
    ("TCA", "Turks and Caicos Islands", true),
    ("TLS", "East Timor", false),
    ("TTO", "Trinidad and Tobago", false),
    ("TUR", "Turkey", false),
    ("TWN", "Taiwan", false),
    ("TZA", "Tanzania", false),
    ("UMI", "US Minor Outlying Islands", true),
    ("USA", "United States", true),
    ("VAT", "Vatican City", false),
    ("VCT", "Saint Vincent and the Grenadines", false),
    ("VEN", "Venezuela", false),
    ("VGB", "British Virgin Islands", true),
    ("VIR", "US Virgin Islands", true),
    ("WLF", "Wallis and Futuna", false),
];

/// The newspaper name of `code` and whether it takes "the", when it differs from the ISO
/// tables' name.
pub(super) fn lookup(code: &str) -> Option<(&'static str, bool)> {
    NAMES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, name, the)| (*name, *the))
}
