//! Country names as Russian statistics print them (FSB, EMISS, MVD), lowercase.

pub(super) const ALIASES: &[(&str, &str)] = &[];
