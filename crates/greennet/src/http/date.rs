//! The `Date` of a response: the current time as an HTTP-date (RFC 9110, section 5.6.7), made
//! at most once a second per worker thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The length of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
const LEN: usize = 29;

/// A whole `date` field line: `date: `, the date, CRLF.
const LINE: usize = 6 + LEN + 2;

thread_local! {
    /// The second last formatted on this thread, and its `date` field line.
    static CACHE: RefCell<(u64, [u8; LINE])> = const { RefCell::new((u64::MAX, [0; LINE])) };
}

/// Appends a `date` field with the current time as an HTTP-date, line ending included. Never
/// inlined: the thread-local's address must be taken afresh on each call, since the calling
/// coroutine may have moved to another worker thread since its last one (see `take_head` in
/// the server).
#[inline(never)]
pub(crate) fn push_date_field(out: &mut Vec<u8>) {
    // A clock set before 1970 is dated at 1970 rather than refused.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != now {
            let mut line = [0; LINE];
            line[..6].copy_from_slice(b"date: ");
            line[6..6 + LEN].copy_from_slice(&format(now));
            line[6 + LEN..].copy_from_slice(b"\r\n");
            *cache = (now, line);
        }
        out.extend_from_slice(&cache.1);
    });
}

/// `secs` since the Unix epoch as an IMF-fixdate.
fn format(secs: u64) -> [u8; LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil(days);
    let mut text = [0u8; LEN];
    text[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    text[3..5].copy_from_slice(b", ");
    two(&mut text[5..7], day);
    text[7] = b' ';
    text[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    text[11] = b' ';
    // Four digits: years past 9999 are beyond the format (and this program).
    let year = year.min(9999);
    two(&mut text[12..14], year / 100);
    two(&mut text[14..16], year % 100);
    text[16] = b' ';
    two(&mut text[17..19], in_day / 3600);
    text[19] = b':';
    two(&mut text[20..22], in_day / 60 % 60);
    text[22] = b':';
    two(&mut text[23..25], in_day % 60);
    text[25..].copy_from_slice(b" GMT");
    text
}

/// Writes `n` (below 100) as two digits.
fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// The (year, month 1-12, day 1-31) of the proleptic Gregorian calendar that is `days` after
/// 1970-01-01. Counts in 400-year eras starting on 1 March, so that the leap day is the
/// last day of its year.
fn civil(days: u64) -> (u64, u64, u64) {
    // Days since 0000-03-01: 1970-01-01 is day 719,468 of that count.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March ... 11 = February.
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64) -> String {
        String::from_utf8(format(secs).to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110's own example.
        assert_eq!(text(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        // Leap days, and the turn of a century that is a leap year.
        assert_eq!(text(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(text(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(text(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(text(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn every_day_of_a_leap_cycle_counts_up() {
        // Consecutive days move the day of the month on by one, or start a new month at 1.
        let mut last = civil(0);
        for days in 1..(4 * 366 + 1) {
            let now = civil(days);
            let next_day = (last.0, last.1, last.2 + 1);
            let next_month = if last.1 == 12 {
                (last.0 + 1, 1, 1)
            } else {
                (last.0, last.1 + 1, 1)
            };
            assert!(
                now == next_day || now == next_month,
                "{last:?} then {now:?}"
            );
            last = now;
        }
    }

    #[test]
    fn appends_the_current_date() {
        let mut out = b"x\r\n".to_vec();
        push_date_field(&mut out);
        assert_eq!(out.len(), 3 + 6 + LEN + 2);
        assert!(out.starts_with(b"x\r\ndate: "));
        assert!(out.ends_with(b" GMT\r\n"));
    }
}
