//! Country names as US and European agencies print them (CBP, DHS OHSS, Eurostat), lowercase.

pub(super) const ALIASES: &[(&str, &str)] = &[];
