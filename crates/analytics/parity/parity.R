# Runs R's surveillance::farringtonFlexible and earsC on the series of a CSV file, so that
# borderwatch's detectors can be compared with the reference implementation point by point.
#
# Usage: Rscript parity.R SERIES_CSV CONTROL_CSV OUT_CSV [TIMING_CSV]
#
# SERIES_CSV:  id,setting,freq,t,count[,evaluate]   (t = 1..n; count NA = missing;
#              evaluate 0/1 marks the range to evaluate; without the column, R's default range)
# CONTROL_CSV: setting,method,b,w,reweight,weights_threshold,alpha,trend,p_threshold_trend,
#              limit54_cases,limit54_periods,powertrans,no_periods,past_weeks_not_included,
#              threshold_method,baseline,min_sigma
#              method is farrington, C1, C2 or C3; NA leaves R's default (alpha of earsC,
#              pastWeeksNotIncluded = w of farringtonFlexible). Each series is run with every
#              control row of its setting.
# OUT_CSV:     id,setting,method,t,observed,upperbound,alarm,expected,pvalue,error
#              one row per evaluated point; a call that stops with an error gives one row
#              with t = NA and the message. When a farringtonFlexible call over a range
#              fails, each point is rerun alone, and the points that fail get a row with
#              their t and the message.
# TIMING_CSV:  method,seconds,points,calls: elapsed time (proc.time) spent inside the
#              detector calls only, excluding R's start-up, package loading and CSV I/O.
#
# Series are built as sts(observed, frequency = freq, start = c(2000, 1)), so epochs are
# integers (epochAsDate = FALSE), as borderwatch's farrington_flexible assumes.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 3) {
  stop("usage: Rscript parity.R SERIES_CSV CONTROL_CSV OUT_CSV [TIMING_CSV]")
}
if (!requireNamespace("surveillance", quietly = TRUE)) {
  message("R package 'surveillance' is not installed; install it with ",
          "`apt-get install -y r-cran-surveillance` (Debian) or install.packages(\"surveillance\")")
  quit(status = 3)
}
suppressPackageStartupMessages(library(surveillance))

series <- read.csv(args[1], stringsAsFactors = FALSE)
controls <- read.csv(args[2], stringsAsFactors = FALSE)
has_eval <- "evaluate" %in% names(series)

num17 <- function(x) ifelse(is.na(x), "NA", trimws(formatC(x, digits = 17, format = "g")))

# R's default ranges, made explicit so that the output can name each point by its t.
default_range <- function(row, n, freq) {
  from <- switch(row$method,
    farrington = freq * row$b + row$w + 1,
    C1 = row$baseline + 1, C2 = row$baseline + 3, C3 = row$baseline + 5)
  if (from > n) integer(0) else from:n
}

farrington_control <- function(row, range) {
  ctl <- list(
    b = row$b, w = row$w, reweight = as.logical(row$reweight),
    weightsThreshold = row$weights_threshold, alpha = row$alpha,
    trend = as.logical(row$trend), pThresholdTrend = row$p_threshold_trend,
    limit54 = c(row$limit54_cases, row$limit54_periods), powertrans = row$powertrans,
    noPeriods = row$no_periods, thresholdMethod = row$threshold_method
  )
  if (!is.na(row$past_weeks_not_included)) {
    ctl$pastWeeksNotIncluded <- row$past_weeks_not_included
  }
  ctl$range <- range
  ctl
}

ears_control <- function(row, range) {
  ctl <- list(method = row$method, baseline = row$baseline, minSigma = row$min_sigma)
  if (!is.na(row$alpha)) ctl$alpha <- row$alpha
  ctl$range <- range
  ctl
}

error_row <- function(id, setting, method, t, message) {
  data.frame(
    id = id, setting = setting, method = method, t = t, observed = NA,
    upperbound = "NA", alarm = NA, expected = "NA", pvalue = "NA",
    error = gsub("[\r\n,\"]", " ", message), stringsAsFactors = FALSE)
}

point_rows <- function(id, setting, method, t, res) {
  n <- length(t)
  expected <- rep(NA_real_, n)
  pvalue <- rep(NA_real_, n)
  if (method == "farrington") {
    expected <- as.vector(res@control$expected)
    pvalue <- as.vector(res@control$pvalue)
  }
  data.frame(
    id = id, setting = setting, method = method, t = t,
    observed = as.vector(res@observed),
    upperbound = num17(as.vector(res@upperbound)),
    alarm = as.integer(as.vector(res@alarm)),
    expected = num17(expected), pvalue = num17(pvalue), error = "",
    stringsAsFactors = FALSE)
}

timing <- list()
out <- vector("list", 0)
ids <- unique(series$id)
for (id in ids) {
  s <- series[series$id == id, ]
  s <- s[order(s$t), ]
  setting <- s$setting[1]
  freq <- s$freq[1]
  range <- NULL
  if (has_eval && any(s$evaluate == 1)) range <- s$t[s$evaluate == 1]
  rows <- controls[controls$setting == setting, ]
  for (r in seq_len(nrow(rows))) {
    row <- rows[r, ]
    method <- row$method
    rng <- if (is.null(range)) default_range(row, nrow(s), freq) else range
    started <- proc.time()[["elapsed"]]
    res <- tryCatch({
      x <- sts(observed = matrix(s$count, ncol = 1), frequency = freq, start = c(2000, 1))
      if (method == "farrington") {
        suppressWarnings(farringtonFlexible(x, control = farrington_control(row, rng)))
      } else {
        earsC(x, control = ears_control(row, rng))
      }
    }, error = function(e) conditionMessage(e))
    elapsed <- proc.time()[["elapsed"]] - started
    tm <- timing[[method]]
    if (is.null(tm)) tm <- c(0, 0, 0)
    if (is.character(res) && method == "farrington" && length(rng) > 1) {
      # One failing point stops R's whole call; run the points one by one, so that the
      # others are still compared and the failing ones are named.
      for (k in rng) {
        one <- tryCatch(
          suppressWarnings(farringtonFlexible(
            sts(observed = matrix(s$count, ncol = 1), frequency = freq, start = c(2000, 1)),
            control = farrington_control(row, k))),
          error = function(e) conditionMessage(e))
        if (is.character(one)) {
          out[[length(out) + 1]] <- error_row(id, setting, method, k, one)
        } else {
          out[[length(out) + 1]] <- point_rows(id, setting, method, k, one)
        }
      }
      timing[[method]] <- tm + c(0, 0, 1)
      next
    }
    if (is.character(res)) {
      out[[length(out) + 1]] <- error_row(id, setting, method, NA, res)
      timing[[method]] <- tm + c(elapsed, 0, 1)
      next
    }
    # sts[range, ] renumbers its epochs, so the points are named by the range passed in.
    out[[length(out) + 1]] <- point_rows(id, setting, method, rng, res)
    n <- length(rng)
    timing[[method]] <- tm + c(elapsed, n, 1)
  }
}

result <- do.call(rbind, out)
write.csv(result, args[3], row.names = FALSE, quote = FALSE, na = "NA")
if (length(args) >= 4) {
  tm <- data.frame(
    method = names(timing),
    seconds = vapply(timing, function(v) v[1], 0),
    points = vapply(timing, function(v) v[2], 0),
    calls = vapply(timing, function(v) v[3], 0))
  write.csv(tm, args[4], row.names = FALSE, quote = FALSE)
}
