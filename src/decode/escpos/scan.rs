//! Command-boundary scanner shared by the decoder and the splitter.
//!
//! It is a byte-at-a-time state machine so that a command (or a multi-megabyte image payload)
//! may straddle any number of input chunks: the state, not a buffer, remembers where we are.

pub(crate) const ESC: u8 = 0x1B;
pub(crate) const GS: u8 = 0x1D;
pub(crate) const FS: u8 = 0x1C;
pub(crate) const DLE: u8 = 0x10;

/// What the scanner found at the end of the consumed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A byte outside any command: text or a single-byte control such as LF.
    Byte(u8),
    /// A command ended; `cut` if it was a paper cut.
    Command { cut: bool },
}

/// How the rest of a command is laid out, decided from the bytes seen so far.
enum Plan {
    /// Another fixed argument byte is needed before we can tell.
    Need,
    /// The command ends with the current byte.
    Done,
    /// The command ended before the current byte, which belongs to what follows.
    EndBefore,
    /// The prefix byte was not a command after all (a lone DLE); reprocess the current byte.
    Reject,
    /// A payload of this many bytes follows.
    Skip(u64),
    /// Bytes up to a NUL follow, at most `cap`; `soft` ends the list at any other control byte.
    UntilNul { cap: u8, soft: bool },
    /// The header of the next repeated block (ESC & character, FS q image) follows.
    Item,
}

#[derive(Debug, Clone, Copy, Default)]
enum State {
    #[default]
    Ground,
    Prefix,
    Args,
    Skip(u64),
    UntilNul {
        left: u8,
        soft: bool,
    },
    Item,
}

/// Incremental ESC/POS tokenizer that knows the real length of every command it understands.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scanner {
    state: State,
    prefix: u8,
    code: u8,
    args: [u8; 8],
    nargs: usize,
    cut: bool,
    /// Repeated blocks still to come: `ESC &` characters (`x` + `y*x` bytes) or `FS q` images
    /// (`xL xH yL yH` + `x*y*8` bytes).
    items: u16,
    item_head: [u8; 4],
    item_have: usize,
}

impl Scanner {
    /// Consumes `input` until an event completes; returns the bytes consumed and the event, or
    /// `None` when all of `input` was consumed in the middle of a command.
    pub(crate) fn next(&mut self, input: &[u8]) -> (usize, Option<Event>) {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            i += 1;
            let plan = match self.state {
                State::Ground => {
                    if matches!(b, ESC | GS | FS | DLE) {
                        self.prefix = b;
                        self.state = State::Prefix;
                        continue;
                    }
                    return (i, Some(Event::Byte(b)));
                }
                State::Prefix => {
                    self.code = b;
                    self.nargs = 0;
                    self.cut = false;
                    self.plan()
                }
                State::Args => match self.args.get_mut(self.nargs) {
                    Some(slot) => {
                        *slot = b;
                        self.nargs += 1;
                        self.plan()
                    }
                    None => Plan::Done,
                },
                State::Skip(left) => {
                    // Bulk-skip payloads so a large image costs one step, not one per byte.
                    let avail = input.len().saturating_sub(i - 1) as u64;
                    let take = left.min(avail);
                    i += take.saturating_sub(1) as usize;
                    if take < left {
                        self.state = State::Skip(left - take);
                        continue;
                    }
                    self.next_item()
                }
                State::UntilNul { left, soft } => match b {
                    0 => Plan::Done,
                    1..0x20 if soft => Plan::EndBefore,
                    _ if left <= 1 => Plan::Done,
                    _ => {
                        self.state = State::UntilNul {
                            left: left - 1,
                            soft,
                        };
                        continue;
                    }
                },
                State::Item => {
                    if let Some(slot) = self.item_head.get_mut(self.item_have) {
                        *slot = b;
                    }
                    self.item_have += 1;
                    let [h0, h1, h2, h3] = self.item_head;
                    let (size, len) = if self.prefix == ESC {
                        let y = self.args.first().copied().unwrap_or(0);
                        (1, u64::from(y) * u64::from(h0))
                    } else {
                        (4, u64::from(le16(h0, h1)) * u64::from(le16(h2, h3)) * 8)
                    };
                    if self.item_have < size {
                        continue;
                    }
                    self.items = self.items.saturating_sub(1);
                    if len > 0 {
                        Plan::Skip(len)
                    } else {
                        self.next_item()
                    }
                }
            };
            match plan {
                Plan::Need => self.state = State::Args,
                Plan::Done | Plan::Skip(0) => return self.finish(i),
                Plan::EndBefore => return self.finish(i - 1),
                Plan::Reject => {
                    self.state = State::Ground;
                    return (i - 1, Some(Event::Byte(self.prefix)));
                }
                Plan::Skip(n) => self.state = State::Skip(n),
                Plan::UntilNul { cap, soft } => self.state = State::UntilNul { left: cap, soft },
                Plan::Item => self.state = State::Item,
            }
        }
        (i, None)
    }

    /// After a payload: either the next repeated block or the end of the command.
    fn next_item(&mut self) -> Plan {
        if self.items == 0 {
            return Plan::Done;
        }
        self.item_have = 0;
        Plan::Item
    }

    fn finish(&mut self, consumed: usize) -> (usize, Option<Event>) {
        self.state = State::Ground;
        (consumed, Some(Event::Command { cut: self.cut }))
    }

    /// Decides the layout of the current command from its prefix, code and the args so far.
    fn plan(&mut self) -> Plan {
        let a = self.args.get(..self.nargs).unwrap_or_default();
        let need = |n: usize| if a.len() < n { Plan::Need } else { Plan::Done };
        let arg = |k: usize| a.get(k).copied().unwrap_or(0);
        let code = self.code;
        match self.prefix {
            ESC => match code {
                b'i' | b'm' => {
                    self.cut = true;
                    Plan::Done
                }
                b' ' | b'!' | b'%' | b'-' | b'3' | b'=' | b'?' | b'E' | b'G' | b'J' | b'K'
                | b'M' | b'R' | b'T' | b'U' | b'V' | b'a' | b'd' | b'e' | b'r' | b't' | b'u'
                | b'{' => need(1),
                b'$' | b'\\' | b'c' => need(2),
                b'p' => need(3),
                b'W' => need(8),
                b'*' if a.len() < 3 => Plan::Need,
                b'*' => {
                    let n = u64::from(le16(arg(1), arg(2)));
                    Plan::Skip(if matches!(arg(0), 32 | 33) { 3 * n } else { n })
                }
                b'(' if a.len() < 3 => Plan::Need,
                b'(' => Plan::Skip(u64::from(le16(arg(1), arg(2)))),
                b'D' => Plan::UntilNul {
                    cap: 33,
                    soft: false,
                },
                b'&' if a.len() < 3 => Plan::Need,
                b'&' => {
                    self.items = (u16::from(arg(2)) + 1).saturating_sub(u16::from(arg(1)));
                    self.next_item()
                }
                _ => Plan::Done,
            },
            GS => match code {
                b'!' | b'/' | b'B' | b'E' | b'H' | b'I' | b'T' | b'a' | b'b' | b'f' | b'h'
                | b'j' | b'r' | b'w' => need(1),
                b'$' | b'L' | b'P' | b'W' | b'\\' => need(2),
                // Bematech "GS 0xF9 '5' n" switches the command set; skipping it keeps "5n" out of the text.
                0xF9 => need(2),
                b'^' | b'z' => need(3),
                b'g' => need(4),
                b'V' => {
                    let m = arg(0);
                    if a.is_empty() || (a.len() < 2 && matches!(m, 65 | 66 | 97 | 98 | 103 | 104)) {
                        return Plan::Need;
                    }
                    self.cut = matches!(m, 0 | 1 | 48 | 49 | 65 | 66 | 97 | 98 | 103 | 104);
                    Plan::Done
                }
                b'v' | b'Q' if a.len() < 6 => Plan::Need,
                b'v' | b'Q' => {
                    Plan::Skip(u64::from(le16(arg(2), arg(3))) * u64::from(le16(arg(4), arg(5))))
                }
                b'*' if a.len() < 2 => Plan::Need,
                b'*' => Plan::Skip(u64::from(arg(0)) * u64::from(arg(1)) * 8),
                b'(' if a.len() < 3 => Plan::Need,
                b'(' => Plan::Skip(u64::from(le16(arg(1), arg(2)))),
                b'8' if a.is_empty() => Plan::Need,
                b'8' if arg(0) != b'L' => Plan::EndBefore,
                b'8' if a.len() < 5 => Plan::Need,
                b'8' => Plan::Skip(u64::from(u32::from_le_bytes([
                    arg(1),
                    arg(2),
                    arg(3),
                    arg(4),
                ]))),
                b'k' if a.is_empty() => Plan::Need,
                b'k' => match arg(0) {
                    0..=6 => Plan::UntilNul {
                        cap: 255,
                        soft: true,
                    },
                    65..=79 if a.len() < 2 => Plan::Need,
                    65..=79 => Plan::Skip(u64::from(arg(1))),
                    _ => Plan::Done,
                },
                _ => Plan::Done,
            },
            FS => match code {
                b'!' | b'-' | b'C' | b'W' => need(1),
                b'S' | b'?' | b'p' => need(2),
                b'2' if a.len() < 2 => Plan::Need,
                b'2' => Plan::Skip(72),
                b'(' if a.len() < 3 => Plan::Need,
                b'(' => Plan::Skip(u64::from(le16(arg(1), arg(2)))),
                b'g' if a.len() < 8 => Plan::Need,
                b'g' if arg(0) == b'1' => Plan::Skip(u64::from(le16(arg(6), arg(7)))),
                b'g' => Plan::Done,
                b'q' if a.is_empty() => Plan::Need,
                b'q' => {
                    self.items = u16::from(arg(0));
                    self.next_item()
                }
                _ => Plan::Done,
            },
            // Real-time commands; anything else after DLE means the DLE was a stray byte.
            _ => match code {
                0x04 if a.is_empty() || (a.len() == 1 && matches!(arg(0), 7 | 8)) => Plan::Need,
                0x04 => Plan::Done,
                0x05 => need(1),
                0x14 if a.is_empty() => Plan::Need,
                0x14 => match arg(0) {
                    1 | 2 => need(3),
                    3 => need(6),
                    7 => need(2),
                    8 => need(8),
                    _ => Plan::Done,
                },
                _ => Plan::Reject,
            },
        }
    }
}

/// Little-endian 16-bit value from `nL nH`.
pub(crate) fn le16(lo: u8, hi: u8) -> u16 {
    u16::from_le_bytes([lo, hi])
}
