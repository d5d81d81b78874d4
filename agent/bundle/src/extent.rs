//! Where a squashfs file's bytes lie in the payload when squashfs stored them verbatim.
//!
//! mksquashfs stores a data block uncompressed when compression would not shrink it (images
//! that are already compressed: squashfs or erofs root filesystems, compressed ext4 content,
//! random test data). Such a file is a few byte ranges of the payload: its blocks, which are
//! contiguous, and possibly a tail inside a fragment block. The installer then copies those
//! ranges with large positional reads instead of going block by block through the squashfs
//! reader. Anything else (a compressed block or fragment, a sparse hole, sizes that do not add
//! up) yields `None` and the caller uses the squashfs reader.

/// A byte range of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
}

/// One stored data block or fragment: its on-disk size and whether it is stored verbatim
/// (squashfs's "uncompressed" bit). Size 0 is a sparse hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u32,
    pub raw: bool,
}

/// A regular file's data layout, as its inode and the fragment table describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLayout<'a> {
    pub file_len: u64,
    pub block_size: u32,
    pub blocks_start: u64,
    pub blocks: &'a [Stored],
    /// The fragment block holding the tail (its start and how it is stored) and the tail's
    /// offset inside it; `None` when the file has no fragment.
    pub fragment: Option<(u64, Stored, u32)>,
}

/// The payload ranges holding the file's bytes in order, if every byte is stored verbatim.
pub fn raw_extents(layout: &FileLayout<'_>) -> Option<Vec<Extent>> {
    let mut extents: Vec<Extent> = Vec::new();
    let mut push = |offset: u64, len: u64| match extents.last_mut() {
        Some(last) if last.offset.checked_add(last.len) == Some(offset) => last.len += len,
        _ => extents.push(Extent { offset, len }),
    };
    let mut pos = layout.blocks_start;
    let mut done = 0u64;
    for block in layout.blocks {
        // A verbatim block holds exactly min(block size, what is left) bytes of the file.
        let want = u64::from(layout.block_size).min(layout.file_len.checked_sub(done)?);
        if !block.raw || block.size == 0 || u64::from(block.size) != want {
            return None;
        }
        push(pos, want);
        pos = pos.checked_add(want)?;
        done += want;
    }
    if done < layout.file_len {
        let (start, stored, offset) = layout.fragment?;
        let tail = layout.file_len - done;
        if !stored.raw || u64::from(offset) + tail > u64::from(stored.size) {
            return None;
        }
        push(start.checked_add(u64::from(offset))?, tail);
    }
    Some(extents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: Stored = Stored {
        size: 4096,
        raw: true,
    };

    fn layout<'a>(
        file_len: u64,
        blocks: &'a [Stored],
        fragment: Option<(u64, Stored, u32)>,
    ) -> FileLayout<'a> {
        FileLayout {
            file_len,
            block_size: 4096,
            blocks_start: 96,
            blocks,
            fragment,
        }
    }

    #[test]
    fn verbatim_blocks_are_one_range_and_a_fragment_tail_another() {
        let frag = Some((
            50_000,
            Stored {
                size: 3000,
                raw: true,
            },
            1000,
        ));
        assert_eq!(
            raw_extents(&layout(2 * 4096 + 500, &[RAW, RAW], frag)),
            Some(vec![
                Extent {
                    offset: 96,
                    len: 8192
                },
                Extent {
                    offset: 51_000,
                    len: 500
                }
            ])
        );
        // Without fragment the last block is short and stored with its own length.
        let short = Stored {
            size: 10,
            raw: true,
        };
        assert_eq!(
            raw_extents(&layout(4096 + 10, &[RAW, short], None)),
            Some(vec![Extent {
                offset: 96,
                len: 4106
            }])
        );
        assert_eq!(raw_extents(&layout(0, &[], None)), Some(vec![]));
    }

    #[test]
    fn anything_not_stored_verbatim_is_left_to_the_squashfs_reader() {
        let compressed = Stored {
            size: 1000,
            raw: false,
        };
        let hole = Stored { size: 0, raw: true };
        assert_eq!(raw_extents(&layout(8192, &[RAW, compressed], None)), None);
        assert_eq!(raw_extents(&layout(8192, &[RAW, hole], None)), None);
        let frag = Some((50_000, compressed, 0));
        assert_eq!(raw_extents(&layout(4096 + 5, &[RAW], frag)), None);
    }

    #[test]
    fn sizes_that_do_not_add_up_are_refused() {
        // Missing tail and no fragment; a block longer than the file; a tail past its fragment.
        assert_eq!(raw_extents(&layout(4096 + 5, &[RAW], None)), None);
        assert_eq!(raw_extents(&layout(100, &[RAW], None)), None);
        let small = Stored {
            size: 10,
            raw: true,
        };
        assert_eq!(
            raw_extents(&layout(4096 + 20, &[RAW], Some((9000, small, 0)))),
            None
        );
        // Offsets that overflow.
        let far = FileLayout {
            blocks_start: u64::MAX - 10,
            ..layout(4096, &[RAW], None)
        };
        assert_eq!(raw_extents(&far), None);
    }
}
