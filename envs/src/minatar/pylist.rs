//! The two Python list operations seaquest's loops depend on, with CPython's semantics:
//! iterating `reversed(list)` while the body removes from the list, and `list.remove(value)`,
//! which removes the first element *equal* to `value`.

/// CPython's `reversed(list)` iterator: it reads index `i` (from the last down) while
/// `0 <= i < len(list)`, so a body that removes elements changes what it visits next.
pub(super) struct Reversed(isize);

impl Reversed {
    pub(super) fn new(len: usize) -> Self {
        Reversed(len as isize - 1)
    }

    pub(super) fn next(&mut self, len: usize) -> Option<usize> {
        if self.0 >= 0 && (self.0 as usize) < len {
            self.0 -= 1;
            Some(self.0 as usize + 1)
        } else {
            self.0 = -1;
            None
        }
    }
}

/// `list.remove(value)`: removes the first element equal to `value`. `at` is where the
/// loop's own object sits: it moves down one if an element before it went, and becomes `None`
/// if it was the one removed.
pub(super) fn remove<T: PartialEq + Copy>(list: &mut Vec<T>, value: T, at: &mut Option<usize>) {
    if let Some(j) = list.iter().position(|e| *e == value) {
        list.remove(j);
        *at = match *at {
            Some(i) if j == i => None,
            Some(i) if j < i => Some(i - 1),
            other => other,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_stops_past_the_end_and_remove_follows_the_object() {
        // reversed([a, b, c]) with the body removing an element equal to the current one that
        // sits earlier: CPython then visits the current object again at the lower index.
        let mut list = vec![1, 2, 1];
        let mut it = Reversed::new(list.len());
        let mut seen = vec![];
        while let Some(k) = it.next(list.len()) {
            seen.push((k, list[k]));
            let mut at = Some(k);
            if k == 2 {
                remove(&mut list, 1, &mut at);
                assert_eq!(at, Some(1), "the current object moved down one");
            }
        }
        assert_eq!(list, [2, 1]);
        assert_eq!(seen, [(2, 1), (1, 1), (0, 2)]);
        let mut at = Some(0);
        remove(&mut list, 2, &mut at);
        assert_eq!((list.as_slice(), at), (&[1][..], None));
    }
}
