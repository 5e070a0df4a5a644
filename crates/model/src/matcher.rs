//! Matchers as Alertmanager writes them: a label name, a value, and one of `=`, `!=`, `=~`,
//! `!~`. A silence is a list of them, every one of which must match; so is a subscription's
//! `matchers` ([`Matchers`]), ANDed with its filter.
//!
//! Two JSON shapes are read: Alertmanager's API objects
//! (`{"name": "country", "value": "PRK", "isRegex": false, "isEqual": true}`) and its text
//! form (`"category=~\"study|work\""`, as `amtool` takes them); the older borderwatch object
//! (`{"country": "PRK", "category": "study"}`) is [`SilenceMatchers`]' other shape. Regexes
//! are anchored as Alertmanager anchors them (`^(?:…)$`), compiled once when the matcher is
//! read, and bounded in size: a silence is user input that notify evaluates on every surge.

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::{Country, Direction, Severity, SurgeEvent, is_token};

/// The longest value a matcher takes, in bytes.
pub const MAX_MATCHER_VALUE: usize = 1024;
/// The most memory one compiled regex may take (the `regex` crate's size limit): enough for
/// any list of names, too little for a pattern built to be slow or huge.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The most matchers one silence (or filter) may have.
pub const MAX_MATCHERS: usize = 32;

/// What a matcher looks at in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatcherName {
    Source,
    /// The ISO 3166-1 alpha-3 code (`PRK`); an equality matcher also takes alpha-2 codes and
    /// names, and stores the code.
    Country,
    Category,
    /// `low`, `medium`, `high` or `critical`.
    Severity,
    /// `rise` (a surge) or `fall` (a significant drop).
    Direction,
    /// The detectors of the event's findings: several values, see [`Labels`].
    Detector,
}

/// An event's labels, as matchers see them. A label may have several values (a surge's
/// detectors, the countries of a missing category): `=` and `=~` match when any value does,
/// `!=` and `!~` when none does. A label an event does not have (a revision's severity) has
/// the one value `""`, as in Alertmanager: `severity!="high"` matches it, `severity="high"`
/// does not.
pub trait Labels {
    fn label(&self, name: MatcherName) -> Vec<std::borrow::Cow<'_, str>>;
}

impl Labels for SurgeEvent {
    fn label(&self, name: MatcherName) -> Vec<std::borrow::Cow<'_, str>> {
        match name {
            MatcherName::Detector => self
                .findings
                .iter()
                .map(|f| f.detector.as_str().into())
                .collect(),
            _ => vec![name.of(self)],
        }
    }
}

impl MatcherName {
    pub fn as_str(self) -> &'static str {
        match self {
            MatcherName::Source => "source",
            MatcherName::Country => "country",
            MatcherName::Category => "category",
            MatcherName::Severity => "severity",
            MatcherName::Direction => "direction",
            MatcherName::Detector => "detector",
        }
    }

    fn parse(s: &str) -> Result<MatcherName, String> {
        match s {
            "source" => Ok(MatcherName::Source),
            "country" => Ok(MatcherName::Country),
            "category" => Ok(MatcherName::Category),
            "severity" => Ok(MatcherName::Severity),
            "direction" => Ok(MatcherName::Direction),
            "detector" => Ok(MatcherName::Detector),
            _ => Err(format!(
                "`{s}` is not a matcher name: use source, country, category, severity, direction or detector"
            )),
        }
    }

    /// This single-valued label's value in `e` (the detector: the first finding's).
    fn of(self, e: &SurgeEvent) -> std::borrow::Cow<'_, str> {
        match self {
            MatcherName::Direction => e.direction.as_str().into(),
            MatcherName::Detector => e
                .findings
                .first()
                .map_or("", |f| f.detector.as_str())
                .into(),
            MatcherName::Source => e.source.as_str().into(),
            MatcherName::Country => e.country.code().into(),
            MatcherName::Category => e.category.as_str().into(),
            MatcherName::Severity => e.severity.to_string().into(),
        }
    }
}

/// `=`, `!=`, `=~` or `!~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }

    fn is_equal(self) -> bool {
        matches!(self, MatchOp::Equal | MatchOp::Regex)
    }

    fn from_flags(is_regex: bool, is_equal: bool) -> MatchOp {
        match (is_regex, is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }
}

/// One checked matcher; a regex one carries its compiled pattern.
#[derive(Clone)]
pub struct Matcher {
    name: MatcherName,
    op: MatchOp,
    value: String,
    regex: Option<Arc<Regex>>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Matcher {
    /// Alertmanager's text form: `country!="PRK"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name.as_str(),
            self.op.as_str(),
            Value::String(self.value.clone())
        )
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A checked matcher: a regex must compile (anchored, within [`REGEX_SIZE_LIMIT`]); an
    /// equality on `source` or `category` takes a name, on `country` a country (stored as
    /// its alpha-3 code), on `severity` a severity. The error says which and why.
    pub fn new(name: MatcherName, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let what = format!("{}{}", name.as_str(), op.as_str());
        if value.len() > MAX_MATCHER_VALUE {
            return Err(format!(
                "{what}: the value is {} bytes, at most {MAX_MATCHER_VALUE}",
                value.len()
            ));
        }
        let (value, regex) = if op.is_regex() {
            let re = RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("{what}: `{value}` is not a valid regex: {e}"))?;
            (value.to_string(), Some(Arc::new(re)))
        } else {
            (
                plain_value(name, value).map_err(|e| format!("{what}: {e}"))?,
                None,
            )
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// `name = value`: the older silence shape, one field each.
    pub fn equal(name: MatcherName, value: &str) -> Result<Matcher, String> {
        Matcher::new(name, MatchOp::Equal, value)
    }

    pub fn name(&self) -> MatcherName {
        self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether `e`'s label matches.
    pub fn matches(&self, e: &SurgeEvent) -> bool {
        self.matches_labels(e)
    }

    /// Whether the label of any event with [`Labels`] matches (see there for labels with
    /// several values or none).
    pub fn matches_labels<L: Labels + ?Sized>(&self, e: &L) -> bool {
        let mut values = e.label(self.name);
        if values.is_empty() {
            values.push("".into());
        }
        let hit = values.iter().any(|got| match &self.regex {
            Some(re) => re.is_match(got),
            None => *got == self.value,
        });
        hit == self.op.is_equal()
    }

    /// Parses Alertmanager's text form, `name OP value` with the value bare or in double
    /// quotes (`country="PRK"`, `category=~"study|work"`, `source!=fsb`).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        let at = text
            .find(['=', '!'])
            .ok_or_else(|| format!("`{text}` is not a matcher: write name=value, name!=value, name=~regex or name!~regex"))?;
        let (name, rest) = text.split_at(at);
        let (op, raw) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(tok, op)| rest.strip_prefix(tok).map(|r| (op, r)))
        .ok_or_else(|| format!("`{text}`: the operator must be =, !=, =~ or !~"))?;
        let name = MatcherName::parse(name.trim())?;
        let raw = raw.trim();
        let value = if raw.starts_with('"') {
            serde_json::from_str::<String>(raw).map_err(|_| {
                format!("`{text}`: the quoted value is not closed or has a bad escape")
            })?
        } else {
            raw.to_string()
        };
        Matcher::new(name, op, &value)
    }

    /// Alertmanager's API object.
    fn to_json(&self) -> Value {
        json!({
            "name": self.name.as_str(),
            "value": self.value,
            "isRegex": self.op.is_regex(),
            "isEqual": self.op.is_equal(),
        })
    }

    /// From Alertmanager's API object (`isEqual` defaults to true, `isRegex` to false) or
    /// its text form.
    fn from_json(v: &Value) -> Result<Matcher, String> {
        let obj = match v {
            Value::String(s) => return Matcher::parse(s),
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "a matcher is an object {{\"name\", \"value\", \"isRegex\", \"isEqual\"}} or a string such as country!=\"PRK\", not {other}"
                ));
            }
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["name", "value", "isRegex", "isEqual"].contains(&k.as_str()))
        {
            return Err(format!(
                "unknown matcher field `{k}`: a matcher has name, value, isRegex and isEqual"
            ));
        }
        let text = |k: &str| match obj.get(k) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(format!("a matcher needs `{k}` as a string")),
        };
        let flag = |k: &str, default: bool| match obj.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("matcher `{k}` must be true or false")),
        };
        let name = MatcherName::parse(text("name")?)?;
        let op = MatchOp::from_flags(flag("isRegex", false)?, flag("isEqual", true)?);
        Matcher::new(name, op, text("value")?)
    }
}

/// The value of a plain (`=`, `!=`) matcher, checked and normalised.
fn plain_value(name: MatcherName, value: &str) -> Result<String, String> {
    match name {
        MatcherName::Source | MatcherName::Category | MatcherName::Detector if !is_token(value) => {
            Err(format!(
                "`{value}` is not a name (lowercase letters, digits, - and _)"
            ))
        }
        MatcherName::Source | MatcherName::Category | MatcherName::Detector => {
            Ok(value.to_string())
        }
        MatcherName::Direction => value.parse::<Direction>().map(|d| d.as_str().to_string()),
        MatcherName::Country => Country::parse(value)
            .map(|c| c.code().to_string())
            .map_err(|e| e.to_string()),
        MatcherName::Severity => value.parse::<Severity>().map(|s| s.to_string()),
    }
}

/// Which events a silence mutes: every matcher must match; a silence has at least one.
///
/// Read from either shape: the older object (`{"country": "PRK", "category": "study"}`, each
/// field an equality) or a list of [`Matcher`]s. Written in the older object when that can
/// say it (equalities on distinct source, country and category), so stored silences and
/// answers keep the shape they were given; otherwise as a list of Alertmanager objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SilenceMatchers(pub Vec<Matcher>);

/// The fields of the older object shape.
const OBJECT_FIELDS: [MatcherName; 3] = [
    MatcherName::Source,
    MatcherName::Country,
    MatcherName::Category,
];

impl SilenceMatchers {
    /// Whether every matcher matches `e` (none: nothing matches).
    pub fn matches(&self, e: &SurgeEvent) -> bool {
        !self.0.is_empty() && self.0.iter().all(|m| m.matches(e))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The equality matcher on `name`, if that is the only matcher on it (the older shape's
    /// field).
    pub fn equal_to(&self, name: MatcherName) -> Option<&str> {
        let mut on = self.0.iter().filter(|m| m.name == name);
        match (on.next(), on.next()) {
            (Some(m), None) if m.op == MatchOp::Equal => Some(&m.value),
            _ => None,
        }
    }

    /// Whether the older object shape can say these matchers.
    fn fits_object(&self) -> bool {
        self.0.iter().all(|m| {
            m.op == MatchOp::Equal
                && OBJECT_FIELDS.contains(&m.name)
                && self.0.iter().filter(|o| o.name == m.name).count() == 1
        })
    }

    /// Reads either shape; the error names what is wrong.
    pub fn from_json(v: &Value) -> Result<SilenceMatchers, String> {
        let out = match v {
            Value::Object(o) => from_object(o)?,
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, m)| Matcher::from_json(m).map_err(|e| format!("matchers[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(format!(
                    "matchers is an object {{\"source\", \"country\", \"category\"}} or a list of matchers, not {other}"
                ));
            }
        };
        if out.len() > MAX_MATCHERS {
            return Err(format!("{} matchers: at most {MAX_MATCHERS}", out.len()));
        }
        Ok(SilenceMatchers(out))
    }
}

fn from_object(o: &Map<String, Value>) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (k, v) in o {
        let name = OBJECT_FIELDS
            .into_iter()
            .find(|n| n.as_str() == k)
            .ok_or_else(|| {
                format!("unknown field `{k}`, expected one of `source`, `country`, `category` (or give matchers as a list)")
            })?;
        match v {
            Value::Null => {}
            Value::String(s) => out.push(Matcher::equal(name, s)?),
            other => return Err(format!("matchers.{k} must be a string, not {other}")),
        }
    }
    // A stable order, whatever the object's.
    out.sort_by_key(|m| OBJECT_FIELDS.iter().position(|n| *n == m.name));
    Ok(out)
}

/// A subscription's matchers: every one must match, ANDed with its filter; none matches
/// everything. Read from Alertmanager's text form (`"country=~\"PRK|CHN\""`) or its API
/// objects, at most [`MAX_MATCHERS`]; written in the text form, as `amtool` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Whether every matcher matches `e` (none: everything matches).
    pub fn matches<L: Labels + ?Sized>(&self, e: &L) -> bool {
        self.0.iter().all(|m| m.matches_labels(e))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads a list of matchers; the error names the one that is wrong
    /// (`matchers[1]: ...`).
    pub fn from_json(v: &Value) -> Result<Matchers, String> {
        let Value::Array(items) = v else {
            return Err(format!(
                "matchers is a list of matchers such as [\"country!=PRK\"], not {v}"
            ));
        };
        if items.len() > MAX_MATCHERS {
            return Err(format!("{} matchers: at most {MAX_MATCHERS}", items.len()));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, m)| Matcher::from_json(m).map_err(|e| format!("matchers[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Matchers)
    }
}

impl Serialize for Matchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| m.to_string()))
    }
}

impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Matchers::from_json(&v).map_err(D::Error::custom)
    }
}

impl Serialize for SilenceMatchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = if self.fits_object() {
            Value::Object(
                self.0
                    .iter()
                    .map(|m| (m.name.as_str().to_string(), Value::String(m.value.clone())))
                    .collect(),
            )
        } else {
            Value::Array(self.0.iter().map(Matcher::to_json).collect())
        };
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SilenceMatchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        SilenceMatchers::from_json(&v).map_err(D::Error::custom)
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Matcher::from_json(&v).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Period;

    fn event(country: &str, category: &str) -> SurgeEvent {
        SurgeEvent {
            id: "sg-1".into(),
            source: "fsb".into(),
            country: Country::parse(country).unwrap(),
            category: category.into(),
            period: Period::Quarter(2024, 3),
            value: 1,
            severity: Severity::High,
            explanation: String::new(),
            findings: vec![],
            release_id: String::new(),
            detected_at: String::new(),
            score: 0.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: Default::default(),
            story: None,
            url: None,
        }
    }

    fn read(v: Value) -> Result<SilenceMatchers, String> {
        SilenceMatchers::from_json(&v)
    }

    #[test]
    fn the_older_object_reads_and_writes_as_it_was() {
        let m = read(json!({"country": "North Korea", "category": "study"})).unwrap();
        assert!(m.matches(&event("PRK", "study")));
        assert!(!m.matches(&event("PRK", "work")));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"country": "PRK", "category": "study"})
        );
        assert_eq!(m.equal_to(MatcherName::Country), Some("PRK"));
        assert!(read(json!({"country": "XXX"})).is_err());
        assert!(read(json!({"category": "Study"})).is_err());
        assert!(read(json!({"region": "x"})).unwrap_err().contains("region"));
    }

    #[test]
    fn alertmanager_objects_and_text_read_with_all_four_operators() {
        let m = read(json!([
            {"name": "country", "value": "PRK", "isRegex": false, "isEqual": true},
            {"name": "category", "value": "stud.*|work", "isRegex": true},
        ]))
        .unwrap();
        assert!(m.matches(&event("PRK", "study")));
        assert!(m.matches(&event("PRK", "work")));
        assert!(!m.matches(&event("PRK", "tourism")));
        assert!(!m.matches(&event("CHN", "study")));
        // Anchored: `stud` alone does not match `study`.
        let anchored = read(json!(["category=~\"stud\""])).unwrap();
        assert!(!anchored.matches(&event("PRK", "study")));
        let not = read(json!(["country!=PRK", "category!~\"work|tourism\""])).unwrap();
        assert!(not.matches(&event("CHN", "study")));
        assert!(!not.matches(&event("PRK", "study")));
        assert!(!not.matches(&event("CHN", "work")));
        // Written back as Alertmanager objects, and read again the same.
        let v = serde_json::to_value(&not).unwrap();
        assert_eq!(
            v[0],
            json!({"name": "country", "value": "PRK", "isRegex": false, "isEqual": false})
        );
        assert_eq!(read(v).unwrap(), not);
        // Equalities on distinct fields keep the older shape.
        let eq = read(json!(["country=PRK"])).unwrap();
        assert_eq!(
            serde_json::to_value(&eq).unwrap(),
            json!({"country": "PRK"})
        );
    }

    #[test]
    fn direction_and_detector_are_labels_too() {
        let mut e = event("PRK", "study");
        let finding = |d: &str| crate::Finding {
            detector: d.into(),
            expected: None,
            upper_bound: None,
            p_value: None,
            message: String::new(),
            baseline: None,
        };
        e.findings = vec![finding("record_high"), finding("farrington")];
        assert!(read(json!(["direction=rise"])).unwrap().matches(&e));
        assert!(!read(json!(["direction=fall"])).unwrap().matches(&e));
        assert!(read(json!(["direction=sideways"])).is_err());
        // Any finding's detector matches `=`; `!=` only when none is that detector.
        assert!(read(json!(["detector=farrington"])).unwrap().matches(&e));
        assert!(!read(json!(["detector!=farrington"])).unwrap().matches(&e));
        assert!(read(json!(["detector!~\"ears_.*\""])).unwrap().matches(&e));
        assert!(read(json!(["detector=Farrington"])).is_err());
    }

    #[test]
    fn bad_matchers_say_why() {
        let e = read(json!([{"name": "category", "value": "(", "isRegex": true}])).unwrap_err();
        assert!(e.contains("not a valid regex"), "{e}");
        let huge = read(json!([{"name": "category", "value": "(a{1000}){1000}", "isRegex": true}]))
            .unwrap_err();
        assert!(huge.contains("not a valid regex"), "{huge}");
        assert!(read(json!(["country<>PRK"])).is_err());
        assert!(read(json!(["colour=red"])).unwrap_err().contains("colour"));
        assert!(read(json!([{"name": "country", "value": "PRK", "isEqual": "yes"}])).is_err());
        assert!(read(json!(["severity=loud"])).is_err());
        assert!(
            read(json!(["severity=~\"high|critical\""]))
                .unwrap()
                .matches(&event("PRK", "x"))
        );
        assert!(read(json!("PRK")).is_err());
    }
}
