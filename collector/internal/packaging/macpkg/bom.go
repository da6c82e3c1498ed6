package macpkg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"time"
)

// A Bom ("bill of materials") lists every path a component package
// installs, with its mode, owner, size and checksum; Installer copies it to
// /var/db/receipts/<identifier>.bom, where `pkgutil --files` and `lsbom`
// read it. Apple has not published the format. This writer follows the
// public reverse-engineered descriptions: hogliux/bomutils (bom.h) and
// igankevich/stuckliste (docs/bom-file-format-reference.md and
// docs/receipt-file-format-reference.md). All integers are big-endian.
//
// Layout written here:
//
//	header (512 bytes): "BOMStore", version 1, number of non-null blocks,
//	  offset and length of the block table, offset and length of the
//	  named-block ("variables") list
//	blocks: the data of every block, back to back
//	named blocks: count, then {block index u32, name length u8, name}
//	block table: count (with the null block 0), {offset, length}...,
//	  then a free list of two empty entries
//
// Named blocks: BomInfo (path count and per-CPU sizes), Paths (a tree of
// path components), HLIndex (hard links: none here), VIndex (virtual
// paths: none) and Size64 (sizes of files over 4 GiB: none, such files are
// refused).

const (
	bomHeaderSize = 512
	// Tree nodes are allocated at the tree's block size, as Apple's mkbom
	// does: 4096 bytes for Paths and HLIndex, 128 for VIndex and Size64.
	bomPathsBlockSize = 4096
	bomSmallBlockSize = 128
	bomNodeHeaderSize = 12 // isLeaf u16, count u16, forward u32, backward u32
)

// Path entry types in a Bom metadata block.
const (
	bomTypeFile = 1
	bomTypeDir  = 2
)

// Executable kinds in the high nibble of a metadata block's flags.
const (
	bomExecThin = 1
	bomExecFat  = 2
)

// bomStore accumulates the blocks of a Bom file.
type bomStore struct {
	data   bytes.Buffer // the file from offset bomHeaderSize on
	blocks [][2]uint32  // {offset, length}; blocks[0] is the null block
}

func newBomStore() *bomStore {
	return &bomStore{blocks: [][2]uint32{{0, 0}}}
}

// add appends a block holding b and returns its index.
func (s *bomStore) add(b []byte) uint32 {
	off := bomHeaderSize + s.data.Len()
	s.data.Write(b)
	s.blocks = append(s.blocks, [2]uint32{uint32(off), uint32(len(b))})
	return uint32(len(s.blocks) - 1)
}

// tree writes a B-tree of (key, value) block index pairs with the given
// node size and returns the index of its "tree" header block. Entries fill
// leaf nodes in order; more than one leaf gets one index node above them
// whose entries are (leaf, last value of that leaf), as mkbom writes.
func (s *bomStore) tree(blockSize int, kv [][2]uint32) (uint32, error) {
	perNode := (blockSize - bomNodeHeaderSize) / 8
	var root uint32
	if len(kv) <= perNode {
		root = s.add(bomNode(blockSize, true, kv, 0, 0))
	} else {
		leaves := (len(kv) + perNode - 1) / perNode
		if leaves > perNode {
			return 0, fmt.Errorf("bom: %d entries are too many for one tree", len(kv))
		}
		// Leaves take consecutive indices, so each can name its neighbours.
		first := uint32(len(s.blocks))
		var index [][2]uint32
		for i := range leaves {
			chunk := kv[i*perNode : min((i+1)*perNode, len(kv))]
			var fwd, back uint32
			if i < leaves-1 {
				fwd = first + uint32(i) + 1
			}
			if i > 0 {
				back = first + uint32(i) - 1
			}
			leaf := s.add(bomNode(blockSize, true, chunk, fwd, back))
			index = append(index, [2]uint32{leaf, chunk[len(chunk)-1][1]})
		}
		root = s.add(bomNode(blockSize, false, index, 0, 0))
	}
	var b bytes.Buffer
	b.WriteString("tree")
	be32(&b, 1) // version
	be32(&b, root)
	be32(&b, uint32(blockSize))
	be32(&b, uint32(len(kv)))
	b.WriteByte(0)
	return s.add(b.Bytes()), nil
}

// bomNode encodes one tree node, padded to the tree's block size.
func bomNode(blockSize int, leaf bool, kv [][2]uint32, forward, backward uint32) []byte {
	b := make([]byte, blockSize)
	if leaf {
		binary.BigEndian.PutUint16(b[0:], 1)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(kv)))
	binary.BigEndian.PutUint32(b[4:], forward)
	binary.BigEndian.PutUint32(b[8:], backward)
	for i, e := range kv {
		binary.BigEndian.PutUint32(b[bomNodeHeaderSize+8*i:], e[0])
		binary.BigEndian.PutUint32(b[bomNodeHeaderSize+8*i+4:], e[1])
	}
	return b
}

// writeBom writes the Bom of entries, which must be in parent-before-child
// order and start with the root ".". Every entry is owned by root:wheel
// and has modification time mtime.
func writeBom(w io.Writer, entries []entry, mtime time.Time) error {
	if len(entries) == 0 || entries[0].Path != "." {
		return errors.New("bom: the first entry must be the root directory \".\"")
	}
	mt := mtime.Unix()
	if mt < 0 || mt > math.MaxUint32 {
		return fmt.Errorf("bom: modification time %v out of range", mtime)
	}
	s := newBomStore()
	info := bomInfo{}

	// Paths: key {id, metadata block}, value {parent id, name}. Ids count
	// from 1 in entry order; the root's parent is 0.
	ids := map[string]uint32{}
	var paths [][2]uint32
	for i, e := range entries {
		if len(e.Data) > math.MaxUint32 {
			return fmt.Errorf("bom: %s: files of 4 GiB or more are not supported", e.Path)
		}
		id := uint32(i + 1)
		ids[e.Path] = id
		var parent uint32
		name := e.Path
		if e.Path != "." {
			dir, base := path.Split(e.Path) // "./a/b" → "./a/", "b"; "./a" → "./", "a"
			dir = strings.TrimSuffix(dir, "/")
			var ok bool
			if parent, ok = ids[dir]; !ok {
				return fmt.Errorf("bom: %s comes before its directory", e.Path)
			}
			name = base
		}
		meta, arches := bomMetadata(e, uint32(mt))
		info.add(arches, e)
		metaIdx := s.add(meta)
		var key, val bytes.Buffer
		be32(&key, id)
		be32(&key, metaIdx)
		be32(&val, parent)
		val.WriteString(name)
		val.WriteByte(0)
		paths = append(paths, [2]uint32{s.add(key.Bytes()), s.add(val.Bytes())})
	}
	pathsIdx, err := s.tree(bomPathsBlockSize, paths)
	if err != nil {
		return err
	}
	hlIdx, err := s.tree(bomPathsBlockSize, nil)
	if err != nil {
		return err
	}
	size64Idx, err := s.tree(bomSmallBlockSize, nil)
	if err != nil {
		return err
	}
	vtree, err := s.tree(bomSmallBlockSize, nil)
	if err != nil {
		return err
	}
	var v bytes.Buffer
	be32(&v, 1) // version
	be32(&v, vtree)
	be32(&v, 0) // non-zero only when the tree has entries
	v.WriteByte(1)
	vIdx := s.add(v.Bytes())
	infoIdx := s.add(info.encode(len(entries)))

	named := []struct {
		name string
		idx  uint32
	}{{"BomInfo", infoIdx}, {"Paths", pathsIdx}, {"HLIndex", hlIdx}, {"VIndex", vIdx}, {"Size64", size64Idx}}
	varsOff := bomHeaderSize + s.data.Len()
	var vars bytes.Buffer
	be32(&vars, uint32(len(named)))
	for _, n := range named {
		be32(&vars, n.idx)
		vars.WriteByte(byte(len(n.name)))
		vars.WriteString(n.name)
	}
	s.data.Write(vars.Bytes())

	indexOff := bomHeaderSize + s.data.Len()
	var index bytes.Buffer
	be32(&index, uint32(len(s.blocks)))
	for _, b := range s.blocks {
		be32(&index, b[0])
		be32(&index, b[1])
	}
	be32(&index, 2) // free list: two empty entries, as mkbom writes
	index.Write(make([]byte, 16))
	s.data.Write(index.Bytes())
	if bomHeaderSize+s.data.Len() > math.MaxUint32 {
		return errors.New("bom: too large")
	}

	hdr := make([]byte, bomHeaderSize)
	copy(hdr, "BOMStore")
	binary.BigEndian.PutUint32(hdr[8:], 1)                        // version
	binary.BigEndian.PutUint32(hdr[12:], uint32(len(s.blocks)-1)) // non-null blocks
	binary.BigEndian.PutUint32(hdr[16:], uint32(indexOff))
	binary.BigEndian.PutUint32(hdr[20:], uint32(index.Len()))
	binary.BigEndian.PutUint32(hdr[24:], uint32(varsOff))
	binary.BigEndian.PutUint32(hdr[28:], uint32(vars.Len()))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err = w.Write(s.data.Bytes())
	return err
}

// machArch is one architecture of a Mach-O file as a Bom records it.
type machArch struct {
	CPUType, CPUSubtype uint32
	Size, Checksum      uint32
}

// bomMetadata encodes an entry's metadata block:
//
//	type u8 (1 file, 2 directory), 1 u8, flags u16 (0x000f for a full
//	Bom; the high nibble is 1 for a Mach-O file, 2 for a universal one),
//	mode u16, uid u32, gid u32, mtime u32, size u32, 1 u8,
//	files: checksum u32 (POSIX cksum), then for executables 1 u8,
//	  architecture count u32 and {cputype, cpusubtype, size, checksum}
//	  per architecture,
//	then 8 zero bytes.
func bomMetadata(e entry, mtime uint32) ([]byte, []machArch) {
	var b bytes.Buffer
	typ, flags := byte(bomTypeFile), uint16(0xf)
	kind, arches := machArches(e.Data)
	if e.Dir {
		typ, kind, arches = bomTypeDir, 0, nil
	}
	flags |= uint16(kind) << 12
	b.WriteByte(typ)
	b.WriteByte(1)
	be16(&b, flags)
	be16(&b, uint16(e.unixMode()))
	be32(&b, 0) // uid root
	be32(&b, 0) // gid wheel
	be32(&b, mtime)
	be32(&b, uint32(len(e.Data)))
	b.WriteByte(1)
	if !e.Dir {
		be32(&b, cksum(e.Data))
		if kind != 0 {
			b.WriteByte(1)
			be32(&b, uint32(len(arches)))
			for _, a := range arches {
				be32(&b, a.CPUType)
				be32(&b, a.CPUSubtype)
				be32(&b, a.Size)
				be32(&b, a.Checksum)
			}
		}
	}
	b.Write(make([]byte, 8))
	return b.Bytes(), arches
}

// machArches recognizes a thin 64- or 32-bit little-endian Mach-O file or
// a universal (fat) one, and returns its kind (bomExecThin, bomExecFat or
// 0 for anything else) and architectures.
func machArches(b []byte) (int, []machArch) {
	if len(b) >= 12 {
		switch binary.LittleEndian.Uint32(b) {
		case machMagic64, machMagic32:
			return bomExecThin, []machArch{{
				CPUType:    binary.LittleEndian.Uint32(b[4:]),
				CPUSubtype: binary.LittleEndian.Uint32(b[8:]),
				Size:       uint32(len(b)),
				Checksum:   cksum(b),
			}}
		}
	}
	fat, err := parseFat(b)
	if err != nil {
		return 0, nil
	}
	var arches []machArch
	for _, a := range fat {
		arches = append(arches, machArch{
			CPUType: a.CPUType, CPUSubtype: a.CPUSubtype,
			Size: a.Size, Checksum: cksum(b[a.Offset : a.Offset+a.Size]),
		})
	}
	return bomExecFat, arches
}

// bomInfo is the BomInfo block: a version, the number of paths and, per
// CPU type (0 for files that are not Mach-O), the bytes installed.
type bomInfo struct {
	cpu  []uint32
	size []uint32
}

func (i *bomInfo) add(arches []machArch, e entry) {
	if len(arches) == 0 {
		i.count(0, uint32(len(e.Data)))
	}
	for _, a := range arches {
		i.count(a.CPUType, a.Size)
	}
}

func (i *bomInfo) count(cpu, size uint32) {
	for k, c := range i.cpu {
		if c == cpu {
			i.size[k] += size
			return
		}
	}
	i.cpu, i.size = append(i.cpu, cpu), append(i.size, size)
}

func (i *bomInfo) encode(paths int) []byte {
	var b bytes.Buffer
	be32(&b, 1) // version
	be32(&b, uint32(paths))
	be32(&b, uint32(len(i.cpu)))
	for k := range i.cpu {
		be32(&b, i.cpu[k])
		be32(&b, 0)
		be32(&b, i.size[k])
		be32(&b, 0)
	}
	return b.Bytes()
}

// cksum is the POSIX cksum CRC (ISO/IEC 8802-3 polynomial 0x04C11DB7, not
// reflected, the length appended least significant byte first, result
// complemented): what `cksum` prints and what mkbom stores. It differs
// from hash/crc32, which is the reflected variant.
func cksum(b []byte) uint32 {
	t := cksumTable()
	var c uint32
	for _, x := range b {
		c = c<<8 ^ t[byte(c>>24)^x]
	}
	for n := uint64(len(b)); n != 0; n >>= 8 {
		c = c<<8 ^ t[byte(c>>24)^byte(n)]
	}
	return ^c
}

func cksumTable() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return &t
}

func be16(b *bytes.Buffer, v uint16) { b.Write(binary.BigEndian.AppendUint16(nil, v)) }
func be32(b *bytes.Buffer, v uint32) { b.Write(binary.BigEndian.AppendUint32(nil, v)) }
