# Regenerates, with R's `surveillance` package, the R-made files of testdata/surveillance/
# (see testdata/README.md for which files those are), into a directory of your choice, so that
# they can be compared with the committed ones:
#
#   Rscript testdata/surveillance/regenerate.R /tmp/regenerated
#   diff -r /tmp/regenerated testdata/surveillance   # only the files this script makes
#
# Run from the repository root. Needs R and the package (Debian: apt-get install r-cran-surveillance;
# the committed files match surveillance 1.20.3 under R 4.2.2). It never writes into testdata/.
# The epysurv files are read, not made: they are the input R ran on.

suppressMessages(library(surveillance))

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "regenerated"
here <- "testdata/surveillance"
dir.create(file.path(out, "epysurv"), recursive = TRUE, showWarnings = FALSE)
dir.create(file.path(out, "expected"), recursive = TRUE, showWarnings = FALSE)

# salmNewport.csv: the package's data set `salmNewport` (weekly, 16 German states), as CSV.
data("salmNewport")
obs <- observed(salmNewport)
salm <- data.frame(t = seq_len(nrow(obs)), date = format(epoch(salmNewport)), obs,
                   check.names = FALSE)
write.table(salm, file.path(out, "salmNewport.csv"), sep = ",", quote = FALSE, row.names = FALSE)

# epysurv/*_pred.csv: the alarms R raises on epysurv's series (train weeks, outbreak cases
# removed, then the 105 test weeks 2011-2012), for the test weeks, with epysurv's settings.
train <- read.csv(file.path(here, "epysurv/salmonella_train.csv"), check.names = FALSE)
test <- read.csv(file.path(here, "epysurv/salmonella_test.csv"), check.names = FALSE)
names(train)[1] <- "date"
names(test)[1] <- "date"
counts <- c(train$n_cases - train$n_outbreak_cases, test$n_cases)
epochs <- as.Date(c(train$date, test$date))
series <- sts(observed = matrix(counts, ncol = 1), epoch = as.numeric(epochs),
              epochAsDate = TRUE, frequency = 52)
range <- nrow(train) + seq_len(nrow(test))

write_pred <- function(file, alarms) {
  pred <- data.frame(test$date, test$n_cases, test$n_outbreak_cases,
                     ifelse(test$outbreak, "True", "False"), as.integer(alarms))
  names(pred) <- c("", "n_cases", "n_outbreak_cases", "outbreak", "alarm")
  write.table(pred, file.path(out, "epysurv", file), sep = ",", quote = FALSE,
              row.names = FALSE)
}
for (m in c("C1", "C2", "C3")) {
  r <- earsC(series, control = list(range = range, method = m, baseline = 7, alpha = 0.001))
  write_pred(paste0("EarsC", substring(m, 2), "_pred.csv"), alarms(r)[, 1])
}
r <- cusum(series, control = list(range = range, k = 1.04, h = 2.26, m = NULL,
                                  trans = "standard", alpha = 0.1, reset = FALSE))
write_pred("Cusum_pred.csv", alarms(r)[, 1])
ff <- farringtonFlexible(series, control = list(
  range = range, b = 3, w = 3, reweight = TRUE, weightsThreshold = 2.58, alpha = 0.01,
  trend = TRUE, pThresholdTrend = 0.05, limit54 = c(5, 4), powertrans = "2/3",
  noPeriods = 1, pastWeeksNotIncluded = 26, thresholdMethod = "delta"))
write_pred("FarringtonFlexible_pred.csv", alarms(ff)[, 1])

# expected/earsC_C1_alpha0.05_salmNewportDE_2011.csv: C1 bounds for the 52 weeks of 2011 on
# the same series (alpha 0.05, baseline 7). The committed file's bounds came from an
# independent formula (its `source` column says so; the first four are the package's own test
# values); this writes R's, to 6 decimals, for comparison of t, observed, upperbound, alarm.
c1 <- earsC(series, control = list(range = nrow(train) + 1:52, method = "C1", alpha = 0.05,
                                   baseline = 7))
iso <- as.integer(format(epochs[nrow(train) + 1:52], "%V"))
write.table(data.frame(t = nrow(train) + 1:52, date = format(epochs[nrow(train) + 1:52]),
                       iso_week = iso, observed = observed(c1)[, 1],
                       upperbound = as.character(round(upperbound(c1)[, 1], 6)),
                       alarm = ifelse(alarms(c1)[, 1], "True", "False"), source = "R earsC"),
            file.path(out, "expected/earsC_C1_alpha0.05_salmNewportDE_2011.csv"),
            sep = ",", quote = FALSE, row.names = FALSE)

# expected/farringtonFlexible_epysurv_window_alarms_R_and_pyref_UB.csv: R's alarm column
# (alarm_R_epysurv) is the farringtonFlexible run above; the other columns are from an
# independent Python reference, not R. This writes R's columns next to R's own bounds.
write.table(data.frame(date = test$date, observed = test$n_cases,
                       upperbound_R = sprintf("%.4f", upperbound(ff)[, 1]),
                       alarm_R_epysurv = ifelse(alarms(ff)[, 1], "True", "False")),
            file.path(out, "expected/farringtonFlexible_epysurv_window_R.csv"),
            sep = ",", quote = FALSE, row.names = FALSE)

# expected/farrington_threshold_unit_tests.csv: the package's unit-test inputs
# (tests/testthat/test-farringtonFlexible.R) through its internal threshold functions.
rows <- list()
add <- function(f, inputs, pt, v) {
  rows[[length(rows) + 1]] <<- data.frame(
    "function" = f, inputs = inputs, powertrans = pt,
    lower = format(v[1], digits = 8), upper = format(v[2], digits = 8),
    pvalue = format(v[3], digits = 7), score = format(v[4], digits = 7), check.names = FALSE)
}
for (pt in c("none", "1/2", "2/3")) {
  v <- surveillance:::algo.farrington.threshold.farrington(
    predFit = 5, predSeFit = 0.2, phi = 1, skewness.transform = pt, alpha = 0.05, y = 8,
    method = "delta")
  add("farrington(delta)", "predFit=5,predSeFit=0.2,phi=1,alpha=0.05,y=8", pt, v)
}
for (m in c("muan", "nbPlugin")) for (phi in c(1.5, 1.0)) {
  v <- surveillance:::algo.farrington.threshold.noufaily(
    predFit = log(5), predSeFit = log(2), phi = phi, skewness.transform = "none",
    alpha = 0.05, y = 11, method = m)
  add(sprintf("noufaily(%s)", m),
      sprintf("predFit=log(5),predSeFit=log(2),phi=%.1f,alpha=0.05,y=11", phi), "none", v)
}
write.table(do.call(rbind, rows), file.path(out, "expected/farrington_threshold_unit_tests.csv"),
            sep = ",", quote = 2, row.names = FALSE)

# expected/farrington_weights_unit_tests.csv: the package's reweighting unit tests.
w1 <- surveillance:::algo.farrington.assign.weights(rep(0, 10), weightsThreshold = 0)
w2 <- surveillance:::algo.farrington.assign.weights(c(0, 0, 0, 0, 0, 2, 2, 2, 2, 2),
                                                   weightsThreshold = 0)
writeLines(c("s,weightsThreshold,expected_weights",
             sprintf("\"rep(0,10)\",0,\"c(%s)\"", paste(format(w1), collapse = ",")),
             sprintf("\"c(0,0,0,0,0,2,2,2,2,2)\",0,\"c(%s)\"", paste(format(w2), collapse = ","))),
           file.path(out, "expected/farrington_weights_unit_tests.csv"))

# expected/vignette_monitoringCounts_table2_nbPlugin.csv: Table 2 of the monitoringCounts
# vignette, farringtonFlexible with nbPlugin thresholds on two states, 2013-W48..W52.
states <- c("Baden.Wuerttemberg", "North.Rhine.Westphalia")
today <- which(epoch(salmNewport) == as.Date("2013-12-23"))
tab <- data.frame(iso_year = 2013, iso_week = 48:52)
for (s in states) {
  r <- farringtonFlexible(salmNewport[, s], control = list(
    range = (today - 4):today, noPeriods = 10, b = 4, w = 3, weightsThreshold = 2.58,
    pastWeeksNotIncluded = 26, pThresholdTrend = 1, thresholdMethod = "nbPlugin",
    alpha = 0.05, limit54 = c(0, 50)))
  tab[[paste0(s, "_observed")]] <- observed(r)[, 1]
  tab[[paste0(s, "_threshold")]] <- upperbound(r)[, 1]
}
write.table(tab, file.path(out, "expected/vignette_monitoringCounts_table2_nbPlugin.csv"),
            sep = ",", quote = FALSE, row.names = FALSE)

cat("regenerated into", out, "\n")
