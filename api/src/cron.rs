//! CronJob schedules as Kubernetes reads them (robfig/cron's standard parser): five fields
//! (minute, hour, day of month, month, day of week) with lists, ranges, steps and names,
//! the `@yearly` ... `@hourly` macros and `@every <duration>`. Times are found in a time
//! zone's wall clock: a time the clock skips (spring forward) runs at the same wall time
//! after the jump, a time the clock repeats (fall back) runs once, at its first occurrence.
//!
//! Pure: the caller gives the instants and the zone.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::fmt;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Five fields.
    Fields(Fields),
    /// `@every`: a fixed period (seconds) after the last run.
    Every(i64),
}

/// Bit sets of the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day of month written as `*` or `?` (without a step above 1).
    dom_star: bool,
    /// Day of week likewise.
    dow_star: bool,
}

/// Why a schedule does not parse (robfig/cron's messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// The latest year searched ahead of a time: a schedule with no time in it (`0 0 30 2 *`)
/// has no next run.
const YEARS_AHEAD: i16 = 5;

fn err(s: String) -> ScheduleError {
    ScheduleError(s)
}

impl Schedule {
    /// Parses a schedule.
    pub fn parse(spec: &str) -> Result<Schedule, ScheduleError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(err("empty spec string".into()));
        }
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err(err(
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into(),
            ));
        }
        if let Some(d) = spec.strip_prefix('@') {
            return descriptor(d, spec);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            )));
        }
        let (minute, _) = field(fields[0], &MINUTE)?;
        let (hour, _) = field(fields[1], &HOUR)?;
        let (dom, dom_star) = field(fields[2], &DOM)?;
        let (month, _) = field(fields[3], &MONTH)?;
        let (dow, dow_star) = field(fields[4], &DOW)?;
        Ok(Schedule::Fields(Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        }))
    }

    /// The first time after `t` (exclusive) in `tz`'s wall clock; `None` if there is none
    /// within five years.
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(secs) => Timestamp::from_second(t.as_second().checked_add(*secs)?).ok(),
            Schedule::Fields(f) => f.next_after(t, tz),
        }
    }

    /// The latest time in `(after, until]`, and whether more than `limit` times fell in
    /// it (Kubernetes warns of over 100 missed runs). Bounded work however far apart the
    /// two are (a clock that jumped years ahead).
    pub fn most_recent(
        &self,
        after: Timestamp,
        until: Timestamp,
        tz: &TimeZone,
        limit: usize,
    ) -> (Option<Timestamp>, bool) {
        if until <= after {
            return (None, false);
        }
        if let Schedule::Every(secs) = self {
            let n = (until.as_second() - after.as_second()) / secs.max(&1);
            let last = (n > 0)
                .then(|| Timestamp::from_second(after.as_second() + n * secs).ok())
                .flatten();
            return (last, n > limit as i64);
        }
        let mut last = None;
        let mut t = after;
        for _ in 0..=limit {
            match self.next_after(t, tz) {
                Some(n) if n <= until => {
                    last = Some(n);
                    t = n;
                }
                _ => return (last, false),
            }
        }
        // More than `limit`: find the latest by looking back from `until` over growing
        // windows (a schedule with a time in a window has its latest there).
        for hours in [1i64, 24, 24 * 32, 24 * 366, 24 * 366 * 6] {
            let from = Timestamp::from_second(until.as_second() - hours * 3600)
                .map_or(after, |f| f.max(after));
            let mut t = from;
            let mut found = None;
            while let Some(n) = self.next_after(t, tz).filter(|n| *n <= until) {
                found = Some(n);
                t = n;
            }
            if found.is_some() {
                return (found, true);
            }
        }
        (last, true)
    }
}

fn descriptor(d: &str, spec: &str) -> Result<Schedule, ScheduleError> {
    let fields = match d {
        "yearly" | "annually" => "0 0 1 1 *",
        "monthly" => "0 0 1 * *",
        "weekly" => "0 0 * * 0",
        "daily" | "midnight" => "0 0 * * *",
        "hourly" => "0 * * * *",
        _ => {
            if let Some(dur) = d.strip_prefix("every ") {
                let secs = go_duration(dur.trim())
                    .ok_or_else(|| err(format!("failed to parse duration {spec}")))?;
                // robfig/cron: at least a second, in whole seconds.
                return Ok(Schedule::Every(secs.max(1)));
            }
            return Err(err(format!("unrecognized descriptor: {spec}")));
        }
    };
    Schedule::parse(fields)
}

/// A Go duration (`1h30m`, `90s`, `1.5h`) in whole seconds (rounded down).
fn go_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * scale;
    }
    (total.is_finite() && total < 1e15).then_some(total as i64)
}

/// One field: its bit set and whether it was written as a star.
fn field(text: &str, b: &Bounds) -> Result<(u64, bool), ScheduleError> {
    let mut bits = 0u64;
    let mut star = false;
    for expr in text.split(',') {
        let (b2, s) = range(expr, b)?;
        bits |= b2;
        star |= s;
    }
    Ok((bits, star))
}

fn range(expr: &str, b: &Bounds) -> Result<(u64, bool), ScheduleError> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => {
            if s.contains('/') {
                return Err(err(format!("too many slashes: {expr}")));
            }
            (r, Some(s))
        }
        None => (expr, None),
    };
    let mut star = false;
    let (start, mut end) = if range == "*" || range == "?" {
        star = true;
        (b.min, b.max)
    } else {
        match range.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(err(format!("too many hyphens: {expr}")));
                }
                (value(lo, b)?, value(hi, b)?)
            }
            None => {
                let v = value(range, b)?;
                (v, v)
            }
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let n = number(s)?;
            if n == 0 {
                return Err(err(format!(
                    "step of range should be a positive number: {expr}"
                )));
            }
            // "N/step" means "N-max/step".
            if !star && !range.contains('-') {
                end = b.max;
            }
            if n > 1 {
                star = false;
            }
            n
        }
    };
    if start < b.min {
        return Err(err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        )));
    }
    if end > b.max {
        return Err(err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        )));
    }
    if start > end {
        return Err(err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    let mut bits = 0u64;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok((bits, star))
}

fn value(s: &str, b: &Bounds) -> Result<u32, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    number(s)
}

fn number(s: &str) -> Result<u32, ScheduleError> {
    s.parse::<u32>()
        .map_err(|_| err(format!("failed to parse int from {s}: invalid syntax")))
}

fn has(bits: u64, v: u32) -> bool {
    bits & (1 << v) != 0
}

impl Fields {
    fn day_matches(&self, d: Date) -> bool {
        let dom = has(self.dom, d.day() as u32);
        let dow = has(self.dow, d.weekday().to_sunday_zero_offset() as u32);
        // As cron: when either day field is a star both must match, else either.
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = t.to_zoned(tz.clone()).datetime();
        let limit = local.year().checked_add(YEARS_AHEAD)?;
        // The next whole minute of the wall clock.
        let mut dt = local
            .date()
            .at(local.hour(), local.minute(), 0, 0)
            .checked_add(jiff::Span::new().minutes(1))
            .ok()?;
        loop {
            if dt.year() > limit {
                return None;
            }
            if !has(self.month, dt.month() as u32) {
                dt = first_of_next_month(dt)?;
                continue;
            }
            if !self.day_matches(dt.date()) {
                dt = dt.date().tomorrow().ok()?.at(0, 0, 0, 0);
                continue;
            }
            if !has(self.hour, dt.hour() as u32) {
                dt = dt
                    .date()
                    .at(dt.hour(), 0, 0, 0)
                    .checked_add(jiff::Span::new().hours(1))
                    .ok()?;
                continue;
            }
            if !has(self.minute, dt.minute() as u32) {
                dt = dt.checked_add(jiff::Span::new().minutes(1)).ok()?;
                continue;
            }
            // A skipped wall time maps past the jump; a repeated one to its first
            // occurrence, which may lie before `t` (then it already ran).
            let at = tz.to_ambiguous_zoned(dt).compatible().ok()?.timestamp();
            if at > t {
                return Some(at);
            }
            dt = dt.checked_add(jiff::Span::new().minutes(1)).ok()?;
        }
    }
}

fn first_of_next_month(dt: DateTime) -> Option<DateTime> {
    Some(
        dt.date()
            .first_of_month()
            .checked_add(jiff::Span::new().months(1))
            .ok()?
            .at(0, 0, 0, 0),
    )
}

/// Whether a CronJob's `timeZone` may be used: `Local` and empty names are refused, as
/// Kubernetes refuses them; the name must be in the IANA database bundled with skiff
/// (looked up without I/O). The coordinator resolves names with [`time_zone`].
pub fn check_time_zone(name: &str) -> Result<(), String> {
    name_problem(name)?;
    bundled()
        .get(name)
        .map(drop)
        .map_err(|_| format!("unknown time zone {name}"))
}

/// Names Kubernetes refuses whatever the database holds.
fn name_problem(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("timeZone must be nil or non-empty string".into());
    }
    if name.eq_ignore_ascii_case("local") {
        return Err(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .into(),
        );
    }
    Ok(())
}

fn bundled() -> &'static jiff::tz::TimeZoneDatabase {
    static DB: std::sync::OnceLock<jiff::tz::TimeZoneDatabase> = std::sync::OnceLock::new();
    DB.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

/// A time zone by its IANA name (`Europe/Berlin`) from `db` (the system's database,
/// `jiff::tz::db()`), else from the bundled one: a board without `/usr/share/zoneinfo`
/// still runs zoned schedules, as kube-controller-manager embeds Go's database. One
/// lookup when the system has the zone (the controller asks at every pass).
pub fn time_zone(db: &jiff::tz::TimeZoneDatabase, name: &str) -> Result<TimeZone, String> {
    name_problem(name)?;
    db.get(name)
        .or_else(|_| bundled().get(name))
        .map_err(|_| format!("unknown time zone {name}"))
}

/// RFC 3339 in a zone's offset (`Z` for UTC), as Go formats it.
pub fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn next(spec: &str, after: &str, tz: &TimeZone) -> String {
        let s = Schedule::parse(spec).unwrap();
        s.next_after(ts(after), tz).unwrap().to_string()
    }

    #[test]
    fn fields_lists_ranges_steps_names() {
        let z = utc();
        assert_eq!(
            next("*/15 * * * *", "2026-01-01T00:07:30Z", &z),
            "2026-01-01T00:15:00Z"
        );
        assert_eq!(
            next("0 9-17/4 * * MON-fri", "2026-12-05T10:00:00Z", &z),
            // A Saturday: the next weekday is Monday the 7th.
            "2026-12-07T09:00:00Z"
        );
        assert_eq!(
            next("5,10 0 * JAN,jul *", "2026-02-01T00:00:00Z", &z),
            "2026-07-01T00:05:00Z"
        );
        // N/step means N-max/step.
        assert_eq!(
            next("50/5 * * * *", "2026-01-01T00:56:00Z", &z),
            "2026-01-01T01:50:00Z"
        );
        // The next run is strictly after the time given.
        assert_eq!(
            next("0 * * * *", "2026-01-01T03:00:00Z", &z),
            "2026-01-01T04:00:00Z"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        let z = utc();
        // Both restricted: either matches (the 13th, or a Friday).
        assert_eq!(
            next("0 0 13 * 5", "2026-02-01T00:00:00Z", &z),
            "2026-02-06T00:00:00Z"
        );
        // One is a star: both must match (Fridays only).
        assert_eq!(
            next("0 0 * * 5", "2026-02-01T00:00:00Z", &z),
            "2026-02-06T00:00:00Z"
        );
        // A step above 1 is not a star: `*/2` days or Fridays.
        assert_eq!(
            next("0 0 */2 * 5", "2026-02-01T12:00:00Z", &z),
            "2026-02-03T00:00:00Z"
        );
    }

    #[test]
    fn macros_and_every() {
        let z = utc();
        for (m, want) in [
            ("@yearly", "2027-01-01T00:00:00Z"),
            ("@annually", "2027-01-01T00:00:00Z"),
            ("@monthly", "2026-06-01T00:00:00Z"),
            ("@weekly", "2026-05-17T00:00:00Z"),
            ("@daily", "2026-05-16T00:00:00Z"),
            ("@midnight", "2026-05-16T00:00:00Z"),
            ("@hourly", "2026-05-15T11:00:00Z"),
            ("@every 1h30m", "2026-05-15T12:00:00Z"),
        ] {
            assert_eq!(next(m, "2026-05-15T10:30:00Z", &z), want, "{m}");
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        for (s, why) in [
            ("", "empty spec string"),
            ("* * * *", "expected exactly 5 fields, found 4: * * * *"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("x * * * *", "failed to parse int from x: invalid syntax"),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("@every 3 days", "failed to parse duration @every 3 days"),
            (
                "TZ=UTC 0 * * * *",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
        ] {
            assert_eq!(Schedule::parse(s).unwrap_err().0, why, "{s:?}");
        }
    }

    #[test]
    fn no_time_at_all() {
        let s = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next_after(ts("2026-01-01T00:00:00Z"), &utc()), None);
    }

    #[test]
    fn wall_clock_of_the_zone_across_daylight_saving() {
        let berlin = time_zone(jiff::tz::db(), "Europe/Berlin").unwrap();
        // 09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer.
        assert_eq!(
            next("0 9 * * *", "2026-01-10T12:00:00Z", &berlin),
            "2026-01-11T08:00:00Z"
        );
        assert_eq!(
            next("0 9 * * *", "2026-07-10T12:00:00Z", &berlin),
            "2026-07-11T07:00:00Z"
        );
        // 2026-03-29: 02:00 jumps to 03:00. 02:30 runs at 03:30 (01:30 UTC), once.
        let s = Schedule::parse("30 2 * * *").unwrap();
        let first = s.next_after(ts("2026-03-28T12:00:00Z"), &berlin).unwrap();
        assert_eq!(first.to_string(), "2026-03-29T01:30:00Z");
        let second = s.next_after(first, &berlin).unwrap();
        assert_eq!(second.to_string(), "2026-03-30T00:30:00Z");
        // 2026-10-25: 03:00 goes back to 02:00. 02:30 happens twice; it runs once.
        let first = s.next_after(ts("2026-10-24T12:00:00Z"), &berlin).unwrap();
        assert_eq!(first.to_string(), "2026-10-25T00:30:00Z");
        let second = s.next_after(first, &berlin).unwrap();
        assert_eq!(second.to_string(), "2026-10-26T01:30:00Z");
    }

    #[test]
    fn most_recent_counts_missed_runs_with_bounded_work() {
        let z = utc();
        let s = Schedule::parse("*/10 * * * *").unwrap();
        let (last, many) = s.most_recent(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:35:00Z"),
            &z,
            100,
        );
        assert_eq!(last.unwrap().to_string(), "2026-01-01T00:30:00Z");
        assert!(!many);
        // Nothing due yet.
        let (last, _) = s.most_recent(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:09:59Z"),
            &z,
            100,
        );
        assert_eq!(last, None);
        // A clock that jumped from 1970 to now: the latest run, and "too many".
        let every_minute = Schedule::parse("* * * * *").unwrap();
        let (last, many) = every_minute.most_recent(
            ts("1970-01-01T00:00:00Z"),
            ts("2026-12-07T11:22:33Z"),
            &z,
            100,
        );
        assert_eq!(last.unwrap().to_string(), "2026-12-07T11:22:00Z");
        assert!(many);
        // A yearly schedule far behind: found through the widest window.
        let yearly = Schedule::parse("@yearly").unwrap();
        let (last, many) = yearly.most_recent(
            ts("1800-01-01T00:00:00Z"),
            ts("2026-12-07T00:00:00Z"),
            &z,
            100,
        );
        assert_eq!(last.unwrap().to_string(), "2026-01-01T00:00:00Z");
        assert!(many);
        let every = Schedule::parse("@every 1m").unwrap();
        let (last, many) = every.most_recent(
            ts("2026-01-01T00:00:30Z"),
            ts("2026-01-01T00:03:00Z"),
            &z,
            100,
        );
        assert_eq!(last.unwrap().to_string(), "2026-01-01T00:02:30Z");
        assert!(!many);
    }

    #[test]
    fn zones_by_name() {
        assert!(check_time_zone("America/Los_Angeles").is_ok());
        assert_eq!(
            check_time_zone("Mars/Olympus").unwrap_err(),
            "unknown time zone Mars/Olympus"
        );
        assert!(check_time_zone("Local").is_err());
        assert!(check_time_zone("").is_err());
        // Without a system database, the bundled one answers.
        let none = jiff::tz::TimeZoneDatabase::none();
        let tokyo = time_zone(&none, "Asia/Tokyo").unwrap();
        assert_eq!(
            rfc3339_in(ts("2026-01-01T00:00:00Z"), &tokyo),
            "2026-01-01T09:00:00+09:00"
        );
        assert_eq!(
            rfc3339_in(ts("2026-01-01T00:00:00Z"), &utc()),
            "2026-01-01T00:00:00Z"
        );
    }
}
