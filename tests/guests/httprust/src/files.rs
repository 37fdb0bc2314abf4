//! The `file` route: reads a file by its guest path through wasi:filesystem, from the
//! directories the host preopened (the site's mounts and its root).

use alloc::format;
use alloc::string::String;

use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

use crate::http::{respond, start, ResponseOut};

/// Streams the file `name` (an absolute guest path) back: 404 when no preopened directory
/// holds that path, 403 with the host's error when opening it is refused.
pub fn serve(name: &str, out: ResponseOut) -> Option<()> {
    let Some((dir, relative)) = preopen_for(name) else {
        return respond(
            out,
            404,
            format!("no preopened directory holds {name}\n").as_bytes(),
        );
    };
    let file = match dir.open_at(
        PathFlags::empty(),
        &relative,
        OpenFlags::empty(),
        DescriptorFlags::READ,
    ) {
        Ok(file) => file,
        Err(code) => return respond(out, 403, format!("open {name}: {code:?}\n").as_bytes()),
    };
    let mut response = start(out, 200, &[])?;
    let mut offset = 0;
    loop {
        let (piece, end) = file.read(64 << 10, offset).ok()?;
        response.write(&piece)?;
        offset += piece.len() as u64;
        if end || piece.is_empty() {
            break;
        }
    }
    response.finish()
}

/// The preopened directory with the longest guest path that holds `name`, and the rest
/// of `name` relative to it.
fn preopen_for(name: &str) -> Option<(Descriptor, String)> {
    get_directories()
        .into_iter()
        .filter_map(|(dir, path)| {
            let base = path.trim_end_matches('/');
            let rest = name.strip_prefix(base)?;
            let relative = match rest.strip_prefix('/') {
                Some(relative) => relative,
                None if rest.is_empty() => ".",
                None => return None,
            };
            Some((base.len(), dir, String::from(relative)))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, dir, relative)| (dir, relative))
}
