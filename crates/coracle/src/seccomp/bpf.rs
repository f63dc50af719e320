//! Classic BPF for seccomp: opcodes, a small assembler with symbolic labels (it turns a
//! conditional jump that would go further than 255 instructions into a short jump to an
//! unconditional `ja`), the kernel's validity rules, and an interpreter of `seccomp_data`
//! programs (used by the tests and the fuzz target to judge what a program does).

pub use crate::sys::seccomp::{SeccompData, SockFilter};

/// The kernel's limit on the length of one filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// `sizeof(struct seccomp_data)`.
const SECCOMP_DATA_LEN: u32 = 64;
/// Offset of `nr` in `seccomp_data`.
pub const OFF_NR: u32 = 0;
/// Offset of `arch` in `seccomp_data`.
pub const OFF_ARCH: u32 = 4;

// Opcode parts (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IMM: u16 = 0x00;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_JA: u16 = 0x00;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JEQ: u16 = BPF_JMP | 0x10;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub const JGT: u16 = BPF_JMP | 0x20;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub const JGE: u16 = BPF_JMP | 0x30;
/// `BPF_JMP | BPF_JSET | BPF_K`.
pub const JSET: u16 = BPF_JMP | 0x40;
const BPF_MEMWORDS: u32 = 16;

/// `ld [k]`: loads the 32-bit word at offset `k` of `seccomp_data` into A.
pub fn load(k: u32) -> SockFilter {
    stmt(BPF_LD | BPF_W | BPF_ABS, k)
}

/// `ret #k`.
pub fn ret(k: u32) -> SockFilter {
    stmt(BPF_RET | BPF_K, k)
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A position in a program being assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The next instruction.
    Next,
    /// A label.
    To(Label),
}

#[derive(Debug, Clone)]
enum Item {
    Label(Label),
    /// Instructions emitted as they are; any jumps inside stay within the block (plus the
    /// instruction right after it).
    Block(Vec<SockFilter>),
    Ja(Label),
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
}

/// A program under construction: straight-line blocks, labels and jumps to labels.
#[derive(Debug, Default)]
pub struct Assembler {
    items: Vec<Item>,
    labels: usize,
}

/// The assembled program is longer than the kernel accepts, or a label was never placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssembleError {
    /// More than [`MAX_INSNS`] instructions (the count).
    TooLong(usize),
    /// A jump to a label that was never placed (a bug in the caller).
    UnplacedLabel,
}

impl Assembler {
    /// A new, unplaced label.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` at the current position.
    pub fn place(&mut self, label: Label) {
        self.items.push(Item::Label(label));
    }

    /// Appends instructions as they are.
    pub fn block(&mut self, insns: Vec<SockFilter>) {
        self.items.push(Item::Block(insns));
    }

    /// Appends one instruction without jumps.
    pub fn insn(&mut self, insn: SockFilter) {
        self.items.push(Item::Block(vec![insn]));
    }

    /// Appends `ja label`.
    pub fn ja(&mut self, label: Label) {
        self.items.push(Item::Ja(label));
    }

    /// Appends a conditional jump (`code` one of [`JEQ`], [`JGT`], [`JGE`], [`JSET`]).
    pub fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    /// Resolves the labels: a conditional jump whose target is more than 255 instructions away
    /// gets a `ja` right after it (one per far side); lengths only grow, so this reaches a fixed
    /// point.
    pub fn finish(self) -> Result<Vec<SockFilter>, AssembleError> {
        // far[i] = (jt far, jf far) for the item i when it is a conditional jump.
        let mut far = vec![(false, false); self.items.len()];
        loop {
            let (starts, labels, total) = self.layout(&far)?;
            if total > MAX_INSNS {
                return Err(AssembleError::TooLong(total));
            }
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    let need = |t: &Target| match t {
                        Target::Next => false,
                        Target::To(l) => labels[l.0].saturating_sub(starts[i] + 1) > 255,
                    };
                    let want = (far[i].0 || need(jt), far[i].1 || need(jf));
                    if want != far[i] {
                        far[i] = want;
                        changed = true;
                    }
                }
            }
            if !changed {
                return self.emit(&far, &starts, &labels, total);
            }
        }
    }

    /// Start of each item, position of each label, total length.
    #[allow(clippy::type_complexity)]
    fn layout(
        &self,
        far: &[(bool, bool)],
    ) -> Result<(Vec<usize>, Vec<usize>, usize), AssembleError> {
        let mut starts = Vec::with_capacity(self.items.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut pos = 0usize;
        for (i, item) in self.items.iter().enumerate() {
            starts.push(pos);
            pos += match item {
                Item::Label(l) => {
                    labels[l.0] = pos;
                    0
                }
                Item::Block(b) => b.len(),
                Item::Ja(_) => 1,
                Item::Jump { .. } => 1 + usize::from(far[i].0) + usize::from(far[i].1),
            };
        }
        if labels.contains(&usize::MAX) {
            return Err(AssembleError::UnplacedLabel);
        }
        Ok((starts, labels, pos))
    }

    fn emit(
        &self,
        far: &[(bool, bool)],
        starts: &[usize],
        labels: &[usize],
        total: usize,
    ) -> Result<Vec<SockFilter>, AssembleError> {
        let mut out = Vec::with_capacity(total);
        // Offset from the instruction at `from` to `to` (forward only).
        let rel = |from: usize, to: usize| -> Result<usize, AssembleError> {
            to.checked_sub(from + 1).ok_or(AssembleError::UnplacedLabel)
        };
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Label(_) => {}
                Item::Block(b) => out.extend_from_slice(b),
                Item::Ja(l) => {
                    let off = rel(starts[i], labels[l.0])?;
                    out.push(stmt(BPF_JMP | BPF_JA, to_u32(off)?));
                }
                Item::Jump { code, k, jt, jf } => {
                    let here = starts[i];
                    let (ft, ff) = far[i];
                    // The far `ja`s follow the jump: first the one for jt, then for jf.
                    let extra = usize::from(ft) + usize::from(ff);
                    let short =
                        |t: &Target, is_far: bool, slot: usize| -> Result<u8, AssembleError> {
                            if is_far {
                                return to_u8(slot);
                            }
                            match t {
                                Target::Next => to_u8(extra),
                                Target::To(l) => to_u8(rel(here, labels[l.0])?),
                            }
                        };
                    let jt_off = short(jt, ft, 0)?;
                    let jf_off = short(jf, ff, usize::from(ft))?;
                    out.push(SockFilter {
                        code: *code,
                        jt: jt_off,
                        jf: jf_off,
                        k: *k,
                    });
                    let mut slot = here + 1;
                    for (is_far, t) in [(ft, jt), (ff, jf)] {
                        if is_far {
                            let dest = match t {
                                Target::Next => here + 1 + extra,
                                Target::To(l) => labels[l.0],
                            };
                            out.push(stmt(BPF_JMP | BPF_JA, to_u32(rel(slot, dest)?)?));
                            slot += 1;
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn to_u8(v: usize) -> Result<u8, AssembleError> {
    u8::try_from(v).map_err(|_| AssembleError::TooLong(v))
}

fn to_u32(v: usize) -> Result<u32, AssembleError> {
    u32::try_from(v).map_err(|_| AssembleError::TooLong(v))
}

/// Why the kernel would refuse a program (the rules of `bpf_check_classic` and
/// `seccomp_check_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Empty or longer than [`MAX_INSNS`].
    Length(usize),
    /// An opcode seccomp does not allow, at this index.
    Opcode(usize),
    /// A load outside `seccomp_data` or not 4-byte aligned, at this index.
    Load(usize),
    /// A jump past the end, at this index.
    Jump(usize),
    /// A scratch memory index out of range, at this index.
    Memory(usize),
    /// A division by the constant 0, at this index.
    DivZero(usize),
    /// The last instruction is not a return.
    NoReturn,
}

/// Checks a program against the kernel's rules for seccomp filters.
pub fn validate(prog: &[SockFilter]) -> Result<(), Invalid> {
    let n = prog.len();
    if n == 0 || n > MAX_INSNS {
        return Err(Invalid::Length(n));
    }
    for (pc, insn) in prog.iter().enumerate() {
        let class = insn.code & 0x07;
        match class {
            BPF_LD | BPF_LDX => match insn.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    if insn.k >= SECCOMP_DATA_LEN || insn.k % 4 != 0 {
                        return Err(Invalid::Load(pc));
                    }
                }
                c if c == BPF_LD | BPF_W | BPF_LEN || c == BPF_LDX | BPF_W | BPF_LEN => {}
                c if c == BPF_LD | BPF_IMM || c == BPF_LDX | BPF_IMM => {}
                c if c == BPF_LD | BPF_MEM || c == BPF_LDX | BPF_MEM => {
                    if insn.k >= BPF_MEMWORDS {
                        return Err(Invalid::Memory(pc));
                    }
                }
                _ => return Err(Invalid::Opcode(pc)),
            },
            BPF_ST | BPF_STX => {
                if insn.code != class || insn.k >= BPF_MEMWORDS {
                    return Err(Invalid::Memory(pc));
                }
            }
            BPF_ALU => {
                let op = insn.code & 0xf0;
                // add sub mul div or and lsh rsh neg mod xor
                if !matches!(
                    op,
                    0x00 | 0x10 | 0x20 | 0x30 | 0x40 | 0x50 | 0x60 | 0x70 | 0x80 | 0x90 | 0xa0
                ) || insn.code & !0xf8 != BPF_ALU
                {
                    return Err(Invalid::Opcode(pc));
                }
                if matches!(op, 0x30 | 0x90) && insn.code & BPF_X == 0 && insn.k == 0 {
                    return Err(Invalid::DivZero(pc));
                }
            }
            BPF_JMP => {
                let op = insn.code & 0xf0;
                if insn.code & !0xf8 != BPF_JMP || op > 0x40 {
                    return Err(Invalid::Opcode(pc));
                }
                if op == BPF_JA {
                    if insn.code != BPF_JMP | BPF_JA || (insn.k as usize) >= n - pc - 1 {
                        return Err(Invalid::Jump(pc));
                    }
                } else if pc + 1 + usize::from(insn.jt) >= n || pc + 1 + usize::from(insn.jf) >= n {
                    return Err(Invalid::Jump(pc));
                }
            }
            BPF_RET => {
                if insn.code != BPF_RET | BPF_K && insn.code != BPF_RET | BPF_A {
                    return Err(Invalid::Opcode(pc));
                }
            }
            _ => {
                // BPF_MISC: tax, txa
                if insn.code != BPF_MISC && insn.code != BPF_MISC | 0x80 {
                    return Err(Invalid::Opcode(pc));
                }
            }
        }
    }
    match prog[n - 1].code & 0x07 {
        BPF_RET => Ok(()),
        _ => Err(Invalid::NoReturn),
    }
}

fn data_word(data: &SeccompData, off: u32) -> u32 {
    let i = off as usize / 4;
    // Truncation is the point: the 32-bit halves of the 64-bit fields, little-endian.
    #[allow(clippy::cast_possible_truncation)]
    match i {
        0 => data.nr.cast_unsigned(),
        1 => data.arch,
        2 => data.instruction_pointer as u32,
        3 => (data.instruction_pointer >> 32) as u32,
        _ => {
            let arg = data.args[(i - 4) / 2 % 6];
            if i.is_multiple_of(2) {
                arg as u32
            } else {
                (arg >> 32) as u32
            }
        }
    }
}

/// Runs a program (which must pass [`validate`]) on `data`, as the kernel does, and returns the
/// filter's value (`SECCOMP_RET_*` action and data). An invalid program returns
/// `SECCOMP_RET_KILL_PROCESS` rather than panicking.
pub fn run(prog: &[SockFilter], data: &SeccompData) -> u32 {
    const KILL: u32 = 0x8000_0000;
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; BPF_MEMWORDS as usize];
    let mut pc = 0usize;
    while let Some(insn) = prog.get(pc) {
        let k = insn.k;
        pc += 1;
        match insn.code & 0x07 {
            BPF_LD | BPF_LDX => {
                let v = match insn.code & 0xe0 {
                    BPF_ABS if k < SECCOMP_DATA_LEN && k % 4 == 0 => data_word(data, k),
                    BPF_LEN => SECCOMP_DATA_LEN,
                    BPF_IMM => k,
                    BPF_MEM if k < BPF_MEMWORDS => mem[k as usize],
                    _ => return KILL,
                };
                if insn.code & 0x07 == BPF_LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            BPF_ST | BPF_STX => {
                let Some(slot) = mem.get_mut(k as usize) else {
                    return KILL;
                };
                *slot = if insn.code & 0x07 == BPF_ST { a } else { x };
            }
            BPF_ALU => {
                let src = if insn.code & BPF_X != 0 { x } else { k };
                a = match insn.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => match a.checked_div(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => match a.checked_rem(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    0xa0 => a ^ src,
                    _ => return KILL,
                };
            }
            BPF_JMP => {
                let src = if insn.code & BPF_X != 0 { x } else { k };
                let taken = match insn.code & 0xf0 {
                    BPF_JA => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => return KILL,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            BPF_RET => return if insn.code & 0x18 == BPF_A { a } else { k },
            _ => {
                if insn.code & 0x80 != 0 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    KILL
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(nr: i32) -> SeccompData {
        SeccompData {
            nr,
            arch: 0xc000_003e,
            ..SeccompData::default()
        }
    }

    #[test]
    fn far_jumps_get_trampolines() {
        let mut asm = Assembler::default();
        let yes = asm.label();
        asm.insn(load(OFF_NR));
        asm.jump(JEQ, 7, Target::To(yes), Target::Next);
        for _ in 0..300 {
            asm.insn(ret(1));
        }
        asm.place(yes);
        asm.insn(ret(2));
        let prog = asm.finish().unwrap();
        validate(&prog).unwrap();
        assert_eq!(prog.len(), 304);
        assert_eq!(run(&prog, &data(7)), 2);
        assert_eq!(run(&prog, &data(8)), 1);
    }

    #[test]
    fn both_sides_far() {
        let mut asm = Assembler::default();
        let (t, f) = (asm.label(), asm.label());
        asm.insn(load(OFF_NR));
        asm.jump(JGT, 7, Target::To(t), Target::To(f));
        for _ in 0..300 {
            asm.insn(ret(1));
        }
        asm.place(f);
        for _ in 0..300 {
            asm.insn(ret(3));
        }
        asm.place(t);
        asm.insn(ret(2));
        let prog = asm.finish().unwrap();
        validate(&prog).unwrap();
        assert_eq!(run(&prog, &data(8)), 2);
        assert_eq!(run(&prog, &data(7)), 3);
    }

    #[test]
    fn validation_catches_bad_programs() {
        assert_eq!(validate(&[]), Err(Invalid::Length(0)));
        assert_eq!(validate(&[load(0)]), Err(Invalid::NoReturn));
        assert_eq!(validate(&[load(2), ret(0)]), Err(Invalid::Load(0)));
        assert_eq!(validate(&[load(64), ret(0)]), Err(Invalid::Load(0)));
        let j = SockFilter {
            code: JEQ,
            jt: 1,
            jf: 0,
            k: 0,
        };
        assert_eq!(validate(&[j, ret(0)]), Err(Invalid::Jump(0)));
        assert!(validate(&[load(60), ret(0)]).is_ok());
    }
}
