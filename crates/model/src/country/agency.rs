//! Country names as US and European agencies print them (CBP, DHS OHSS, Eurostat, Frontex),
//! lowercase. Only spellings the ISO tables and `aliases.rs` do not already read are here;
//! `crates/ingest/tests/us_formats.rs` checks that every name in the real files resolves.

pub(super) const ALIASES: &[(&str, &str)] = &[
    // DHS OHSS ("Monthly Citizenship" sheet): "Country, qualifier" without "of".
    ("china, people's republic", "CHN"),
    ("china, people's republic of", "CHN"),
    ("congo, democratic republic", "COD"),
    ("congo, democratic republic of the", "COD"),
    ("democratic republic of the congo", "COD"),
    ("congo, republic", "COG"),
    ("congo, republic of the", "COG"),
    // A state that no longer exists keeps its ISO 3166-3 code, apart from Serbia (SRB)
    // and Montenegro (MNE): its figures belong to neither.
    ("serbia and montenegro (former)", "SCG"),
    ("serbia and montenegro", "SCG"),
    // Its code, so that a stored SCG figure reads back (the ISO tables no longer list it).
    ("scg", "SCG"),
    // CBP Nationwide Encounters: capitals, qualifiers in brackets.
    ("myanmar (burma)", "MMR"),
    // Eurostat writes Greece and the United Kingdom with its own two-letter codes.
    ("el", "GRC"),
    ("uk", "GBR"),
    // Eurostat's and Frontex's words for an unknown or unstated citizenship (`ZZU`, apart
    // from "other": a table may give both rows).
    ("unk", "ZZU"),
    ("not specified", "ZZU"),
    ("unspecified", "ZZU"),
    ("all other", "ZZO"),
    ("other nationalities", "ZZO"),
    ("palestine", "PSE"),
];

#[cfg(test)]
mod tests {
    use crate::Country;

    #[test]
    fn agency_spellings_resolve() {
        for (name, code) in [
            ("China, People's Republic", "CHN"),
            ("CHINA, PEOPLES REPUBLIC OF", "CHN"),
            ("Congo, Democratic Republic", "COD"),
            ("Congo, Republic", "COG"),
            ("MYANMAR (BURMA)", "MMR"),
            ("Serbia and Montenegro (former)", "SCG"),
            ("EL", "GRC"),
            ("UK", "GBR"),
            ("UNK", "ZZU"),
            ("Not specified", "ZZU"),
        ] {
            assert_eq!(
                Country::parse(name).map(|c| c.to_string()),
                Ok(code.into()),
                "{name}"
            );
        }
    }
}
