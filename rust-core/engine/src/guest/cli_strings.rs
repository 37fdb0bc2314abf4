//! `args_get`, `args_sizes_get`, `environ_get` and `environ_sizes_get` served from strings
//! laid out once per guest. wasmtime-wasi keeps them as owned pairs, copies them into its
//! context, and clones the whole list again on each of the four calls: a CGI request's
//! environment of about 25 variables cost some 200 small allocations and as many frees,
//! a quarter of the tiny guest's time in the engine (8.1 -> 6.0 us per request).

use wasmtime::{Caller, Linker};

use super::{errno, exported_memory, write_u32, GuestState, WASI};

/// NUL-terminated strings as a guest's `argv_buf`/`environ_buf` holds them, and where each
/// starts (a configured value may hold a NUL of its own; the guest then sees it cut there,
/// as with wasmtime-wasi's own calls).
pub struct CStrings {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl CStrings {
    /// Arguments, each NUL-terminated.
    pub fn args(args: &[String]) -> Self {
        let size = args.iter().map(|a| a.len() + 1).sum();
        let mut strings = CStrings::with_capacity(args.len(), size);
        for arg in args {
            strings.push(&[arg]);
        }
        strings
    }

    /// Environment variables as `KEY=value`, each NUL-terminated.
    pub fn environ<'a>(vars: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let (count, size) = vars.clone().fold((0, 0), |(n, size), (k, v)| {
            (n + 1, size + k.len() + v.len() + 2)
        });
        let mut strings = CStrings::with_capacity(count, size);
        for (key, value) in vars {
            strings.push(&[key, "=", value]);
        }
        strings
    }

    fn with_capacity(count: usize, size: usize) -> Self {
        CStrings {
            bytes: Vec::with_capacity(size),
            starts: Vec::with_capacity(count),
        }
    }

    /// Appends one string made of `parts`.
    fn push(&mut self, parts: &[&str]) {
        self.starts.push(self.bytes.len());
        for part in parts {
            self.bytes.extend_from_slice(part.as_bytes());
        }
        self.bytes.push(0);
    }

    /// The `*_sizes_get` answer: how many strings, and their bytes with the NULs.
    fn sizes(&self) -> Result<(u32, u32), i32> {
        let size = u32::try_from(self.bytes.len()).map_err(|_| errno::OVERFLOW)?;
        let count = u32::try_from(self.starts.len()).map_err(|_| errno::OVERFLOW)?;
        Ok((count, size))
    }

    /// Writes the count and size (`*_sizes_get`) at `count_at` and `size_at`.
    fn put_sizes(&self, data: &mut [u8], count_at: i32, size_at: i32) -> wasmtime::Result<i32> {
        let (count, size) = match self.sizes() {
            Ok(sizes) => sizes,
            Err(errno) => return Ok(errno),
        };
        for (at, value) in [(count_at, count), (size_at, size)] {
            let at = at as u32 as usize;
            aligned(at)?;
            write_u32(data, at, value).ok_or_else(out_of_bounds)?;
        }
        Ok(errno::SUCCESS)
    }

    /// Writes the strings at `buf` and a pointer to each at `pointers` (`*_get`).
    fn write(&self, data: &mut [u8], pointers: i32, buf: i32) -> wasmtime::Result<()> {
        let (pointers, buf) = (pointers as u32 as usize, buf as u32 as usize);
        aligned(pointers)?;
        let end = buf
            .checked_add(self.bytes.len())
            .filter(|&end| end <= data.len())
            .ok_or_else(out_of_bounds)?;
        pointers
            .checked_add(self.starts.len() * 4)
            .filter(|&end| end <= data.len())
            .ok_or_else(out_of_bounds)?;
        data[buf..end].copy_from_slice(&self.bytes);
        for (slot, start) in self.starts.iter().enumerate() {
            // `buf + start` is inside memory (checked above), so it fits the guest's u32.
            write_u32(data, pointers + slot * 4, (buf + start) as u32).ok_or_else(out_of_bounds)?;
        }
        Ok(())
    }
}

/// Replaces wasmtime-wasi's argument and environment calls in `linker` with ones that read
/// the guest's [`CStrings`]. As there, a pointer out of bounds or misaligned traps (the
/// preview1 rule for pointers a call must dereference).
pub fn serve_args_and_environ(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let lists: [(&str, Which); 2] = [("args", |s| &s.args), ("environ", |s| &s.environ)];
    linker.allow_shadowing(true);
    for (list, which) in lists {
        linker.func_wrap(
            WASI,
            &format!("{list}_sizes_get"),
            move |caller: Caller<'_, GuestState>, count: i32, size: i32| {
                with_list(caller, which, |list, data| {
                    list.put_sizes(data, count, size)
                })
            },
        )?;
        linker.func_wrap(
            WASI,
            &format!("{list}_get"),
            move |caller: Caller<'_, GuestState>, pointers: i32, buf: i32| {
                with_list(caller, which, |list, data| {
                    list.write(data, pointers, buf)?;
                    Ok(errno::SUCCESS)
                })
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Which of the guest's lists a call serves.
type Which = fn(&GuestState) -> &CStrings;

/// Runs `call` on the list `which` of the caller's state, with the guest's memory.
fn with_list(
    mut caller: Caller<'_, GuestState>,
    which: Which,
    call: impl FnOnce(&CStrings, &mut [u8]) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let memory = exported_memory(&mut caller)?;
    let (data, state) = memory.data_and_store_mut(&mut caller);
    call(which(state), data)
}

fn aligned(at: usize) -> wasmtime::Result<()> {
    if !at.is_multiple_of(4) {
        return Err(wasmtime::format_err!("pointer {at:#x} is not aligned to 4"));
    }
    Ok(())
}

fn out_of_bounds() -> wasmtime::Error {
    wasmtime::format_err!("pointer out of bounds of the guest's memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(data: &[u8], at: usize, n: usize) -> Vec<u32> {
        (0..n)
            .map(|i| u32::from_le_bytes(data[at + 4 * i..at + 4 * i + 4].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn environ_is_laid_out_as_preview1_lays_it_out() {
        let env = CStrings::environ([("A", "1"), ("EMPTY", ""), ("B", "x=y")].into_iter());
        assert_eq!(env.sizes(), Ok((3, 17)));
        let mut data = vec![0xAAu8; 64];
        env.write(&mut data, 0, 20).unwrap();
        assert_eq!(&data[20..37], b"A=1\0EMPTY=\0B=x=y\0");
        assert_eq!(pointers(&data, 0, 3), [20, 24, 31]);
        assert_eq!(data[12..20], [0xAA; 8], "nothing written past the table");
        assert_eq!(data[37..], [0xAA; 27], "nothing written past the strings");
    }

    #[test]
    fn a_nul_inside_a_value_does_not_shift_the_pointers() {
        let env = CStrings::environ([("A", "x\0y"), ("B", "2")].into_iter());
        let mut data = vec![0u8; 32];
        env.write(&mut data, 0, 8).unwrap();
        assert_eq!(&data[8..18], b"A=x\0y\0B=2\0");
        assert_eq!(pointers(&data, 0, 2), [8, 14]);
    }

    #[test]
    fn args_and_the_empty_list() {
        let args = CStrings::args(&["/srv/a.wasm".into(), "".into()]);
        assert_eq!(args.sizes(), Ok((2, 13)));
        let none = CStrings::args(&[]);
        assert_eq!(none.sizes(), Ok((0, 0)));
        let mut data = vec![0u8; 8];
        none.write(&mut data, 8, 8).unwrap();
    }

    #[test]
    fn out_of_bounds_or_misaligned_pointers_write_nothing() {
        let env = CStrings::environ([("A", "1")].into_iter());
        let mut data = vec![0u8; 16];
        assert!(env.write(&mut data, 0, 13).is_err(), "strings past the end");
        assert!(env.write(&mut data, 16, 0).is_err(), "table past the end");
        assert!(env.write(&mut data, 2, 8).is_err(), "misaligned table");
        assert!(env.write(&mut data, 0, -1).is_err(), "address wraps");
        assert_eq!(data, [0u8; 16]);
    }
}
