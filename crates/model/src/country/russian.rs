//! Country names as Russian statistics print them (FSB, EMISS, MVD), lowercase, and the
//! codes they use for territories ISO 3166 does not list.
//!
//! Abkhazia and South Ossetia: the FSB and the MVD count them as countries, ISO 3166 does not.
//! They get codes from ISO 3166's user-assigned range `XAA`–`XZZ` (which can never collide
//! with a real country), the ones the republished FSB file already uses: `XAB` (`XB`) and
//! `XOS` (`XS`). In the OKSM classifier (Russia's edition of ISO 3166 numeric, used by EMISS)
//! they are 895 and 896. The MVD also counts Kosovo (`XKX`, as the EU and the IMF code it),
//! Northern Cyprus (`XNC`), Nagorno-Karabakh (`XNK`) and Transnistria (`XPM`) apart: each keeps
//! its own series rather than being lost or merged into a neighbour.

use super::{Country, CountryError};

/// Territories outside ISO 3166: code, English name, OKSM numeric code.
pub(super) const USER_ASSIGNED: &[(&str, &str, Option<u16>)] = &[
    ("XAB", "Abkhazia", Some(895)),
    ("XOS", "South Ossetia", Some(896)),
    // Kosovo's code as the EU and the IMF use it.
    ("XKX", "Kosovo", None),
    ("XNC", "Northern Cyprus", None),
    ("XNK", "Nagorno-Karabakh", None),
    ("XPM", "Transnistria", None),
];

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
    ("xkx", "XKX"),
    ("xnc", "XNC"),
    ("xnk", "XNK"),
    ("xpm", "XPM"),
    ("kosovo", "XKX"),
    ("northern cyprus", "XNC"),
    ("nagorno-karabakh", "XNK"),
    ("transnistria", "XPM"),
    // The MVD's country names (migration statistics), each checked against ISO 3166.
    ("всего по странам", "ZZT"),
    ("австралия", "AUS"),
    ("австрия", "AUT"),
    ("албания", "ALB"),
    ("алжир", "DZA"),
    ("американское самоа", "ASM"),
    ("ангилья", "AIA"),
    ("ангола", "AGO"),
    ("антарктида", "ATA"),
    ("андорра", "AND"),
    ("антигуа и барбуда", "ATG"),
    ("аргентина", "ARG"),
    ("аруба", "ABW"),
    ("афганистан", "AFG"),
    ("багамы", "BHS"),
    ("бангладеш", "BGD"),
    ("барбадос", "BRB"),
    ("бахрейн", "BHR"),
    ("белиз", "BLZ"),
    ("бельгия", "BEL"),
    ("бенин", "BEN"),
    ("бермуды", "BMU"),
    ("болгария", "BGR"),
    ("боливия, многонациональное государство", "BOL"),
    ("боливия", "BOL"),
    ("бонэйр, синт-эстатиус и саба", "BES"),
    ("босния и герцеговина", "BIH"),
    ("ботсвана", "BWA"),
    ("бразилия", "BRA"),
    ("британская территория в индийском океане", "IOT"),
    ("бруней-даруссалам", "BRN"),
    ("бруней", "BRN"),
    ("буркина-фасо", "BFA"),
    ("бурунди", "BDI"),
    ("бутан", "BTN"),
    ("вануату", "VUT"),
    ("ватикан (папский престол)", "VAT"),
    ("ватикан", "VAT"),
    ("великобритания (соединенное королевство)", "GBR"),
    ("соединенное королевство", "GBR"),
    ("венгрия", "HUN"),
    ("венесуэла, боливарианская республика", "VEN"),
    ("венесуэла", "VEN"),
    ("виргинские острова, британские", "VGB"),
    ("виргинские острова, сша", "VIR"),
    ("габон", "GAB"),
    ("гаити", "HTI"),
    ("гайана", "GUY"),
    ("гамбия", "GMB"),
    ("гана", "GHA"),
    ("гваделупа", "GLP"),
    ("гватемала", "GTM"),
    ("гвинея", "GIN"),
    ("гвинея-бисау", "GNB"),
    ("гернси", "GGY"),
    ("гибралтар", "GIB"),
    ("гондурас", "HND"),
    ("гонконг", "HKG"),
    ("гренада", "GRD"),
    ("гренландия", "GRL"),
    ("греция", "GRC"),
    ("гуам", "GUM"),
    ("дания", "DNK"),
    ("джерси", "JEY"),
    ("джибути", "DJI"),
    ("доминика", "DMA"),
    ("доминиканская республика", "DOM"),
    ("египет", "EGY"),
    ("замбия", "ZMB"),
    ("западная сахара", "ESH"),
    ("зимбабве", "ZWE"),
    ("израиль", "ISR"),
    ("индонезия", "IDN"),
    ("иордания", "JOR"),
    ("ирак", "IRQ"),
    ("иран, исламская республика", "IRN"),
    ("ирландия", "IRL"),
    ("исландия", "ISL"),
    ("испания", "ESP"),
    ("италия", "ITA"),
    ("йемен", "YEM"),
    ("кабо-верде", "CPV"),
    ("камбоджа", "KHM"),
    ("камерун", "CMR"),
    ("канада", "CAN"),
    ("катар", "QAT"),
    ("кения", "KEN"),
    ("кипр", "CYP"),
    ("северный кипр (трск)", "XNC"),
    ("северный кипр", "XNC"),
    ("кирибати", "KIR"),
    ("кокосовые (килинг) острова", "CCK"),
    ("колумбия", "COL"),
    ("коморы", "COM"),
    ("конго", "COG"),
    ("конго, демократическая республика", "COD"),
    ("демократическая республика конго", "COD"),
    ("косово, республика", "XKX"),
    ("косово", "XKX"),
    ("коста-рика", "CRI"),
    ("кот-д’ивуар", "CIV"),
    ("кот-д'ивуар", "CIV"),
    ("куба", "CUB"),
    ("кувейт", "KWT"),
    ("кюрасао", "CUW"),
    ("острова кука", "COK"),
    ("лаосская народно-демократическая республика", "LAO"),
    ("лаос", "LAO"),
    ("лесото", "LSO"),
    ("либерия", "LBR"),
    ("ливан", "LBN"),
    ("ливия", "LBY"),
    ("лихтенштейн", "LIE"),
    ("люксембург", "LUX"),
    ("маврикий", "MUS"),
    ("мавритания", "MRT"),
    ("мадагаскар", "MDG"),
    ("майотта", "MYT"),
    ("макао", "MAC"),
    ("республика македония", "MKD"),
    ("македония", "MKD"),
    ("северная македония", "MKD"),
    ("малави", "MWI"),
    ("малайзия", "MYS"),
    ("мали", "MLI"),
    (
        "малые тихоокеанские отдаленные острова соединенных штатов",
        "UMI",
    ),
    ("мальдивы", "MDV"),
    ("мальта", "MLT"),
    ("марокко", "MAR"),
    ("мартиника", "MTQ"),
    ("маршалловы острова", "MHL"),
    ("мексика", "MEX"),
    ("микронезия, федеративные штаты", "FSM"),
    ("микронезия", "FSM"),
    ("мозамбик", "MOZ"),
    ("молдова, республика", "MDA"),
    ("монако", "MCO"),
    ("монтсеррат", "MSR"),
    ("мьянма", "MMR"),
    ("остров мэн", "IMN"),
    ("нагорно-карабахская республика", "XNK"),
    ("намибия", "NAM"),
    ("науру", "NRU"),
    ("непал", "NPL"),
    ("нигер", "NER"),
    ("нигерия", "NGA"),
    ("нидерланды", "NLD"),
    ("никарагуа", "NIC"),
    ("ниуэ", "NIU"),
    ("новая зеландия", "NZL"),
    ("новая каледония", "NCL"),
    ("норвегия", "NOR"),
    ("остров норфолк", "NFK"),
    ("объединенные арабские эмираты", "ARE"),
    ("оаэ", "ARE"),
    ("оман", "OMN"),
    ("остров буве", "BVT"),
    ("острова кайман", "CYM"),
    ("пакистан", "PAK"),
    ("палау", "PLW"),
    ("палестина, государство", "PSE"),
    ("палестина", "PSE"),
    ("панама", "PAN"),
    ("папуа — новая гвинея", "PNG"),
    ("папуа - новая гвинея", "PNG"),
    ("папуа-новая гвинея", "PNG"),
    ("парагвай", "PRY"),
    ("перу", "PER"),
    ("питкэрн", "PCN"),
    ("португалия", "PRT"),
    ("приднестровская молдавская республика", "XPM"),
    ("приднестровье", "XPM"),
    ("пуэрто-рико", "PRI"),
    ("реюньон", "REU"),
    ("остров рождества", "CXR"),
    ("руанда", "RWA"),
    ("румыния", "ROU"),
    ("эль-сальвадор", "SLV"),
    ("сальвадор", "SLV"),
    ("самоа", "WSM"),
    ("сан-марино", "SMR"),
    ("сан-томе и принсипи", "STP"),
    ("саудовская аравия", "SAU"),
    ("свазиленд", "SWZ"),
    ("эсватини", "SWZ"),
    ("святая елена, остров вознесения, тристан-да-кунья", "SHN"),
    ("северные марианские острова", "MNP"),
    ("сейшелы", "SYC"),
    ("сен-бартелеми", "BLM"),
    ("сен-мартен", "MAF"),
    ("сен-мартен (нидерландская часть)", "SXM"),
    ("синт-мартен", "SXM"),
    ("сенегал", "SEN"),
    ("сен-пьер и микелон", "SPM"),
    ("сент-пьер и микелон", "SPM"),
    ("сент-винсент и гренадины", "VCT"),
    ("сент-киттс и невис", "KNA"),
    ("сент-люсия", "LCA"),
    ("сербия", "SRB"),
    ("сингапур", "SGP"),
    ("сирийская арабская республика", "SYR"),
    ("словакия", "SVK"),
    ("словения", "SVN"),
    ("соединенные штаты", "USA"),
    ("соломоновы острова", "SLB"),
    ("сомали", "SOM"),
    ("судан", "SDN"),
    ("южный судан", "SSD"),
    ("суринам", "SUR"),
    ("сьерра-леоне", "SLE"),
    ("таиланд", "THA"),
    ("тайвань (китай)", "TWN"),
    ("тайвань", "TWN"),
    ("танзания, объединенная республика", "TZA"),
    ("острова теркс и кайкос", "TCA"),
    ("тимор-лесте", "TLS"),
    ("восточный тимор", "TLS"),
    ("того", "TGO"),
    ("токелау", "TKL"),
    ("тонга", "TON"),
    ("тринидад и тобаго", "TTO"),
    ("тувалу", "TUV"),
    ("тунис", "TUN"),
    ("уганда", "UGA"),
    ("уоллис и футуна", "WLF"),
    ("уругвай", "URY"),
    ("фарерские острова", "FRO"),
    ("фиджи", "FJI"),
    ("филиппины", "PHL"),
    ("фолклендские острова (мальвинские)", "FLK"),
    ("франция", "FRA"),
    ("французская гвиана", "GUF"),
    ("французская полинезия", "PYF"),
    ("французские южные территории", "ATF"),
    ("остров херд и острова макдональд", "HMD"),
    ("хорватия", "HRV"),
    ("центрально-африканская республика", "CAF"),
    ("чад", "TCD"),
    ("черногория", "MNE"),
    ("чешская республика", "CZE"),
    ("чехия", "CZE"),
    ("чили", "CHL"),
    ("швейцария", "CHE"),
    ("швеция", "SWE"),
    ("шпицберген и ян майен", "SJM"),
    ("шри-ланка", "LKA"),
    ("эквадор", "ECU"),
    ("экваториальная гвинея", "GNQ"),
    ("эландские острова", "ALA"),
    ("эритрея", "ERI"),
    ("эфиопия", "ETH"),
    ("южная джорджия и южные сандвичевы острова", "SGS"),
    ("южная африка", "ZAF"),
    ("юар", "ZAF"),
    ("ямайка", "JAM"),
    ("япония", "JPN"),
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
        if let Some((alpha3, _, _)) = USER_ASSIGNED.iter().find(|(_, _, oksm)| *oksm == Some(n)) {
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
    fn every_alias_names_a_code_iso_or_user_assigned() {
        for (alias, code) in ALIASES {
            let known = matches!(*code, "ZZT" | "ZZO")
                || USER_ASSIGNED.iter().any(|(c, _, _)| c == code)
                || celes::Country::from_alpha3(code.to_lowercase()).is_ok();
            assert!(known, "`{alias}` → `{code}` is no ISO 3166 alpha-3 code");
            assert_eq!(alias.to_lowercase(), *alias, "aliases are lowercase");
            assert_eq!(Country::parse(alias).unwrap().code(), *code, "{alias}");
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
