//! Parity of EARS C1/C2/C3 and CUSUM with R `surveillance` outputs kept in `testdata/`:
//! epysurv's alarm vectors (R via rpy2) and the package's own earsC test values.

use borderwatch_analytics::surveillance::cusum::{CusumConfig, cusum};
use borderwatch_analytics::surveillance::ears::{EarsConfig, EarsMethod, ears_c};

#[path = "support/testdata.rs"]
mod testdata;

fn read_csv(rel: &str) -> (Vec<String>, Vec<Vec<String>>) {
    testdata::read_csv("surveillance", rel)
}

fn column(rel: &str, header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{rel} has no column `{name}` (header {header:?})"))
}

fn numbers(rel: &str, name: &str) -> Vec<f64> {
    let (header, rows) = read_csv(rel);
    let col = column(rel, &header, name);
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            r[col]
                .parse()
                .unwrap_or_else(|e| panic!("{rel} row {} column {name}: {e}", i + 2))
        })
        .collect()
}

/// epysurv's setup: the R series is train (outbreak cases removed, none here) followed by test;
/// the range is the test weeks.
fn epysurv_series() -> (Vec<f64>, std::ops::Range<usize>) {
    let train = numbers("epysurv/salmonella_train.csv", "n_cases");
    let train_outbreak = numbers("epysurv/salmonella_train.csv", "n_outbreak_cases");
    let test = numbers("epysurv/salmonella_test.csv", "n_cases");
    let mut series: Vec<f64> = train
        .iter()
        .zip(&train_outbreak)
        .map(|(n, o)| n - o)
        .collect();
    let start = series.len();
    series.extend(&test);
    (series, start..start + test.len())
}

fn r_alarms(rel: &str) -> Vec<bool> {
    numbers(rel, "alarm").iter().map(|&a| a == 1.0).collect()
}

fn mismatches(ours: &[bool], r: &[bool]) -> Vec<usize> {
    assert_eq!(ours.len(), r.len(), "length differs from R's");
    (0..r.len()).filter(|&i| ours[i] != r[i]).collect()
}

fn check_epysurv_ears(method: EarsMethod, file: &str) {
    let (series, range) = epysurv_series();
    let cfg = EarsConfig {
        method,
        baseline: 7,
        min_sigma: 0.0,
        alpha: Some(0.001),
    };
    let out = ears_c(&series, Some(range), &cfg).unwrap();
    let ours: Vec<bool> = out.iter().map(|p| p.alarm).collect();
    let r = r_alarms(file);
    let bad = mismatches(&ours, &r);
    assert!(
        bad.is_empty(),
        "{method:?}: test weeks {bad:?} differ from R"
    );
    assert!(
        r.iter().any(|&a| a),
        "{file}: R raised no alarm, the test would be vacuous"
    );
}

#[test]
fn ears_c1_matches_epysurv_alarms() {
    check_epysurv_ears(EarsMethod::C1, "epysurv/EarsC1_pred.csv");
}

#[test]
fn ears_c2_matches_epysurv_alarms() {
    check_epysurv_ears(EarsMethod::C2, "epysurv/EarsC2_pred.csv");
}

#[test]
fn ears_c3_matches_epysurv_alarms() {
    check_epysurv_ears(EarsMethod::C3, "epysurv/EarsC3_pred.csv");
}

#[test]
fn ears_c1_alpha_005_matches_r_package_test_bounds() {
    let rel = "expected/earsC_C1_alpha0.05_salmNewportDE_2011.csv";
    let (header, rows) = read_csv(rel);
    let (t_col, obs_col, ub_col, alarm_col) = (
        column(rel, &header, "t"),
        column(rel, &header, "observed"),
        column(rel, &header, "upperbound"),
        column(rel, &header, "alarm"),
    );
    // salmNewport aggregated over the states is the epysurv series (train ++ test).
    let (series, _) = epysurv_series();
    let t: Vec<usize> = rows.iter().map(|r| r[t_col].parse().unwrap()).collect();
    // `t` is R's 1-based index; the rows are consecutive.
    let range = t[0] - 1..t[t.len() - 1];
    assert_eq!(range.len(), rows.len(), "{rel}: rows are not consecutive");
    let cfg = EarsConfig {
        alpha: Some(0.05),
        ..EarsConfig::default()
    };
    let out = ears_c(&series, Some(range), &cfg).unwrap();

    let r_test = [3.278854, 3.278854, 3.436517, 3.855617];
    for (p, want) in out.iter().zip(r_test) {
        assert!(
            (p.upper_bound - want).abs() < 1e-6,
            "week index {}: {} vs R's test value {want}",
            p.index,
            p.upper_bound
        );
    }
    for (p, row) in out.iter().zip(&rows) {
        let observed: f64 = row[obs_col].parse().unwrap();
        let ub: f64 = row[ub_col].parse().unwrap();
        let alarm = row[alarm_col] == "True";
        assert_eq!(
            series[p.index],
            observed,
            "observed differs at t={}",
            p.index + 1
        );
        // The file rounds to 6 decimals.
        assert!(
            (p.upper_bound - ub).abs() < 1e-6,
            "t={}: {} vs {ub}",
            p.index + 1,
            p.upper_bound
        );
        assert_eq!(p.alarm, alarm, "alarm differs at t={}", p.index + 1);
    }
}

#[test]
fn cusum_matches_epysurv_alarms() {
    // epysurv's Cusum defaults: k = 1.04, h = 2.26, m = NULL (mean of the training weeks),
    // trans = "standard", alpha = 0.1 (unused by "standard"), no reset.
    let (series, range) = epysurv_series();
    let out = cusum(&series, range, &CusumConfig::default()).unwrap();
    let ours: Vec<bool> = out.iter().map(|p| p.alarm).collect();
    let r = r_alarms("epysurv/Cusum_pred.csv");
    let bad = mismatches(&ours, &r);
    assert!(bad.is_empty(), "test weeks {bad:?} differ from R");
    assert_eq!(r.iter().filter(|&&a| a).count(), 62);
}
