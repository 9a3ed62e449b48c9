//! A tiny slab with generations, so a mio token of a closed socket can never reach the
//! socket that reuses its slot (events of one poll batch may name a socket closed earlier in it).

use mio::Token;

/// Index plus generation of a slab entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub index: u32,
    pub gen: u32,
}

pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Slab<T> {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The key the next `insert` will return (so a socket can be registered before insertion).
    pub fn next_key(&self) -> Key {
        match self.free.last() {
            Some(&i) => Key { index: i, gen: self.slots[i as usize].0.wrapping_add(1) },
            None => Key { index: self.slots.len() as u32, gen: 0 },
        }
    }

    pub fn insert(&mut self, value: T) -> Key {
        let key = self.next_key();
        match self.free.pop() {
            Some(i) => self.slots[i as usize] = (key.gen, Some(value)),
            None => self.slots.push((0, Some(value))),
        }
        self.len += 1;
        key
    }

    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some((gen, Some(v))) if *gen == key.gen => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some((gen, Some(v))) if *gen == key.gen => Some(v),
            _ => None,
        }
    }

    pub fn remove(&mut self, key: Key) -> Option<T> {
        match self.slots.get_mut(key.index as usize) {
            Some((gen, slot @ Some(_))) if *gen == key.gen => {
                self.free.push(key.index);
                self.len -= 1;
                slot.take()
            }
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(|(_, v)| v.as_ref())
    }

    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| v.is_some())
            .map(|(i, (gen, _))| Key { index: i as u32, gen: *gen })
    }
}

/// Token kinds: the low two bits of a connection's mio token (0, 1 and the listener's are the
/// loop's own tokens).
pub const KIND_CLIENT: usize = 2;
pub const KIND_UPSTREAM: usize = 3;

/// A slab key as a mio token: kind in the low two bits, index above, generation on top.
pub fn token(kind: usize, key: Key) -> Token {
    Token(((key.gen as usize) << 32) | ((key.index as usize) << 2) | kind)
}

/// The kind and key a token carries.
pub fn untoken(t: Token) -> (usize, Key) {
    (t.0 & 3, Key { index: ((t.0 >> 2) & 0x3fff_ffff) as u32, gen: (t.0 >> 32) as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_miss_after_reuse() {
        let mut s = Slab::new();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(a.index, b.index);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn next_key_predicts_insert() {
        let mut s = Slab::new();
        for i in 0..5 {
            let k = s.next_key();
            assert_eq!(s.insert(i), k);
        }
        let k = s.keys().nth(2).unwrap();
        s.remove(k);
        let n = s.next_key();
        assert_eq!(s.insert(9), n);
    }
}
