//! Splitting a batch into request bodies under a byte budget (the sandbox caps each HTTP body,
//! 1 MiB by default, and peers have their own limits).

use std::ops::Range;

/// Ranges of consecutive items whose sizes add up to at most `max` bytes; an item larger than
/// `max` goes alone (the peer or the sandbox then refuses it, naming the limit).
pub fn by_size(sizes: &[usize], max: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        match out.last_mut() {
            Some(range) if bytes + size <= max => {
                range.end = i + 1;
                bytes += size;
            }
            _ => {
                out.push(i..i + 1);
                bytes = *size;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_stay_under_the_budget() {
        assert_eq!(by_size(&[4, 4, 9, 1, 3, 3], 8), [0..2, 2..3, 3..6]);
        assert_eq!(by_size(&[], 8), Vec::<Range<usize>>::new());
        assert_eq!(by_size(&[20], 8), vec![Range { start: 0, end: 1 }]);
    }
}
