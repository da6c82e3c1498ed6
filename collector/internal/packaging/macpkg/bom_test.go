package macpkg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bomRecord is a path of a Bom as readBom reads it back.
type bomRecord struct {
	Path      string
	Type      byte
	ExecKind  int
	Mode      uint32
	UID, GID  uint32
	MTime     uint32
	Size      uint32
	Checksum  uint32
	Arches    []machArch
	ID        uint32
	ParentID  uint32
	NameBlock uint32
}

// bomFile is a parsed Bom: its paths, named blocks and BomInfo.
type bomFile struct {
	Paths     []bomRecord
	Named     map[string]uint32
	InfoPaths uint32
	InfoSizes map[uint32]uint32 // CPU type → bytes
	Leaves    int
}

// readBom is an independent Bom reader for tests, written from the same
// public format descriptions as the writer (see bom.go). It checks what a
// reader relies on: the header, block bounds, the named blocks, the tree
// headers and the linked leaves of Paths, and that every metadata block
// is consumed exactly.
func readBom(b []byte) (*bomFile, error) {
	if len(b) < 512 || string(b[:8]) != "BOMStore" {
		return nil, fmt.Errorf("not a BOMStore")
	}
	u32 := func(p []byte) uint32 { return binary.BigEndian.Uint32(p) }
	if v := u32(b[8:]); v != 1 {
		return nil, fmt.Errorf("version %d", v)
	}
	nonNull := u32(b[12:])
	indexOff, indexLen := u32(b[16:]), u32(b[20:])
	varsOff, varsLen := u32(b[24:]), u32(b[28:])
	if uint64(indexOff)+uint64(indexLen) > uint64(len(b)) || uint64(varsOff)+uint64(varsLen) > uint64(len(b)) {
		return nil, fmt.Errorf("index or vars out of bounds")
	}
	index := b[indexOff : indexOff+indexLen]
	n := u32(index)
	if uint64(len(index)) < 4+8*uint64(n)+4 {
		return nil, fmt.Errorf("short block table")
	}
	var blocks [][]byte
	count := uint32(0)
	for i := range n {
		off, ln := u32(index[4+8*i:]), u32(index[8+8*i:])
		if uint64(off)+uint64(ln) > uint64(len(b)) {
			return nil, fmt.Errorf("block %d out of bounds", i)
		}
		if off != 0 || ln != 0 {
			count++
		}
		blocks = append(blocks, b[off:off+ln])
	}
	if count != nonNull {
		return nil, fmt.Errorf("header says %d non-null blocks, table has %d", nonNull, count)
	}
	if blocks[0] == nil || len(blocks[0]) != 0 {
		return nil, fmt.Errorf("block 0 is not null")
	}
	block := func(i uint32) ([]byte, error) {
		if i == 0 || i >= uint32(len(blocks)) {
			return nil, fmt.Errorf("bad block index %d", i)
		}
		return blocks[i], nil
	}

	f := &bomFile{Named: map[string]uint32{}, InfoSizes: map[uint32]uint32{}}
	vars := b[varsOff : varsOff+varsLen]
	nv := u32(vars)
	p := vars[4:]
	for range nv {
		idx, ln := u32(p), int(p[4])
		f.Named[string(p[5:5+ln])] = idx
		p = p[5+ln:]
	}

	// tree returns the (key, value) pairs of a tree, following the leaves'
	// forward links from the leftmost leaf.
	tree := func(name string, wantBlockSize uint32) ([][2]uint32, error) {
		t, err := block(f.Named[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(t) != 21 || string(t[:4]) != "tree" || u32(t[4:]) != 1 {
			return nil, fmt.Errorf("%s: bad tree header %x", name, t)
		}
		if bs := u32(t[12:]); bs != wantBlockSize {
			return nil, fmt.Errorf("%s: block size %d, want %d", name, bs, wantBlockSize)
		}
		total := u32(t[16:])
		cur := u32(t[8:])
		node, err := block(cur)
		if err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint16(node) == 0 { // index node: go to the first leaf
			cur = u32(node[12:])
			if node, err = block(cur); err != nil {
				return nil, err
			}
		}
		var kv [][2]uint32
		var prev uint32
		for {
			if binary.BigEndian.Uint16(node) != 1 {
				return nil, fmt.Errorf("%s: expected a leaf", name)
			}
			if len(node) != int(wantBlockSize) {
				return nil, fmt.Errorf("%s: node of %d bytes, want %d", name, len(node), wantBlockSize)
			}
			f.Leaves++
			cnt := binary.BigEndian.Uint16(node[2:])
			fwd, back := u32(node[4:]), u32(node[8:])
			if back != prev {
				return nil, fmt.Errorf("%s: leaf %d links back to %d, want %d", name, cur, back, prev)
			}
			for i := range uint32(cnt) {
				kv = append(kv, [2]uint32{u32(node[12+8*i:]), u32(node[16+8*i:])})
			}
			if fwd == 0 {
				break
			}
			prev, cur = cur, fwd
			if node, err = block(cur); err != nil {
				return nil, err
			}
		}
		if uint32(len(kv)) != total {
			return nil, fmt.Errorf("%s: tree header says %d entries, leaves hold %d", name, total, len(kv))
		}
		return kv, nil
	}

	paths, err := tree("Paths", 4096)
	if err != nil {
		return nil, err
	}
	leavesInPaths := f.Leaves
	byID := map[uint32]*bomRecord{}
	for _, e := range paths {
		key, err := block(e[0])
		if err != nil {
			return nil, err
		}
		val, err := block(e[1])
		if err != nil {
			return nil, err
		}
		r := bomRecord{ID: u32(key), ParentID: u32(val)}
		nul := bytes.IndexByte(val[4:], 0)
		if nul != len(val)-5 {
			return nil, fmt.Errorf("path value block is not one NUL-ended name")
		}
		name := string(val[4 : 4+nul])
		meta, err := block(u32(key[4:]))
		if err != nil {
			return nil, err
		}
		if err := parseMeta(meta, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if r.ParentID == 0 {
			r.Path = name
		} else {
			parent, ok := byID[r.ParentID]
			if !ok {
				return nil, fmt.Errorf("%s: parent %d not seen yet", name, r.ParentID)
			}
			r.Path = parent.Path + "/" + name
		}
		f.Paths = append(f.Paths, r)
		byID[r.ID] = &f.Paths[len(f.Paths)-1]
	}
	f.Leaves = leavesInPaths
	for _, name := range []string{"HLIndex"} {
		kv, err := tree(name, 4096)
		if err != nil || len(kv) != 0 {
			return nil, fmt.Errorf("%s: %v, %d entries", name, err, len(kv))
		}
	}
	if kv, err := tree("Size64", 128); err != nil || len(kv) != 0 {
		return nil, fmt.Errorf("Size64: %v, %d entries", err, len(kv))
	}
	vi, err := block(f.Named["VIndex"])
	if err != nil || len(vi) != 13 || u32(vi) != 1 {
		return nil, fmt.Errorf("VIndex: %v %x", err, vi)
	}
	f.Named["vtree"] = u32(vi[4:])
	if kv, err := tree("vtree", 128); err != nil || len(kv) != 0 {
		return nil, fmt.Errorf("VIndex tree: %v, %d entries", err, len(kv))
	}
	f.Leaves = leavesInPaths
	info, err := block(f.Named["BomInfo"])
	if err != nil || len(info) < 12 || u32(info) != 1 {
		return nil, fmt.Errorf("BomInfo: %v", err)
	}
	f.InfoPaths = u32(info[4:])
	ne := u32(info[8:])
	if len(info) != 12+16*int(ne) {
		return nil, fmt.Errorf("BomInfo: %d bytes for %d entries", len(info), ne)
	}
	for i := range ne {
		f.InfoSizes[u32(info[12+16*i:])] = u32(info[20+16*i:])
	}
	return f, nil
}

// parseMeta reads a metadata block into r and checks that nothing is left
// over but the 8 closing zero bytes.
func parseMeta(m []byte, r *bomRecord) error {
	u32 := func(p []byte) uint32 { return binary.BigEndian.Uint32(p) }
	if len(m) < 21 {
		return fmt.Errorf("metadata block of %d bytes", len(m))
	}
	r.Type = m[0]
	if m[1] != 1 {
		return fmt.Errorf("second byte %d, want 1", m[1])
	}
	flags := binary.BigEndian.Uint16(m[2:])
	if flags&0xf != 0xf {
		return fmt.Errorf("flags %#x: not a full Bom", flags)
	}
	r.ExecKind = int(flags >> 12)
	r.Mode = uint32(binary.BigEndian.Uint16(m[4:]))
	r.UID, r.GID, r.MTime, r.Size = u32(m[6:]), u32(m[10:]), u32(m[14:]), u32(m[18:])
	if m[22] != 1 {
		return fmt.Errorf("byte after size %d, want 1", m[22])
	}
	rest := m[23:]
	if r.Type == bomTypeFile {
		r.Checksum = u32(rest)
		rest = rest[4:]
		if r.ExecKind != 0 {
			if rest[0] != 1 {
				return fmt.Errorf("executable marker %d", rest[0])
			}
			n := u32(rest[1:])
			rest = rest[5:]
			for range n {
				r.Arches = append(r.Arches, machArch{u32(rest), u32(rest[4:]), u32(rest[8:]), u32(rest[12:])})
				rest = rest[16:]
			}
		}
	}
	if !bytes.Equal(rest, make([]byte, 8)) {
		return fmt.Errorf("%d bytes left over: %x", len(rest), rest)
	}
	return nil
}

func TestBomRoundTrip(t *testing.T) {
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	arm := buildDarwin(t, "arm64")
	es, err := entries([]File{
		{Path: "usr/local/bin/tool", Mode: 0o755, Data: arm},
		{Path: "Library/LaunchDaemons/x.plist", Mode: 0o644, Data: []byte("<plist/>\n")},
		{Path: "Library/Application Support/X", Mode: fs.ModeDir | 0o700},
		{Path: "usr/local/share/x/empty", Mode: 0o600},
	})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeBom(&b, es, mtime); err != nil {
		t.Fatal(err)
	}
	f, err := readBom(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.Paths {
		got = append(got, fmt.Sprintf("%s %o %d/%d %d", r.Path, r.Mode, r.UID, r.GID, r.Size))
		if r.MTime != uint32(mtime.Unix()) {
			t.Errorf("%s: mtime %d", r.Path, r.MTime)
		}
	}
	want := []string{
		". 40755 0/0 0",
		"./Library 40755 0/0 0",
		"./Library/Application Support 40755 0/0 0",
		"./Library/Application Support/X 40700 0/0 0",
		"./Library/LaunchDaemons 40755 0/0 0",
		"./Library/LaunchDaemons/x.plist 100644 0/0 9",
		"./usr 40755 0/0 0",
		"./usr/local 40755 0/0 0",
		"./usr/local/bin 40755 0/0 0",
		fmt.Sprintf("./usr/local/bin/tool 100755 0/0 %d", len(arm)),
		"./usr/local/share 40755 0/0 0",
		"./usr/local/share/x 40755 0/0 0",
		"./usr/local/share/x/empty 100600 0/0 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f.InfoPaths != uint32(len(want)) {
		t.Errorf("BomInfo: %d paths, want %d", f.InfoPaths, len(want))
	}
	if f.InfoSizes[0] != 9 || f.InfoSizes[CPUTypeARM64] != uint32(len(arm)) {
		t.Errorf("BomInfo sizes %v", f.InfoSizes)
	}
	for _, r := range f.Paths {
		switch r.Path {
		case "./usr/local/bin/tool":
			if r.Type != bomTypeFile || r.ExecKind != bomExecThin || len(r.Arches) != 1 ||
				r.Arches[0].CPUType != CPUTypeARM64 || r.Arches[0].Size != uint32(len(arm)) || r.Arches[0].Checksum != r.Checksum {
				t.Errorf("tool: %+v", r)
			}
		case "./Library/LaunchDaemons/x.plist":
			if r.Type != bomTypeFile || r.ExecKind != 0 || r.Checksum != cksum([]byte("<plist/>\n")) {
				t.Errorf("plist: %+v", r)
			}
		}
	}
}

// TestBomManyPaths makes the Paths tree overflow one 4096-byte leaf, so
// that it gets an index node over linked leaves.
func TestBomManyPaths(t *testing.T) {
	var files []File
	for i := range 1500 {
		files = append(files, File{Path: fmt.Sprintf("opt/x/f%04d", i), Mode: 0o644, Data: []byte(strconv.Itoa(i))})
	}
	es, err := entries(files)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeBom(&b, es, DefaultModTime); err != nil {
		t.Fatal(err)
	}
	f, err := readBom(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Paths) != len(es) || f.Leaves != 3 {
		t.Fatalf("%d paths in %d leaves, want %d in 3", len(f.Paths), f.Leaves, len(es))
	}
	for i, r := range f.Paths {
		if r.Path != es[i].Path || r.ID != uint32(i+1) {
			t.Fatalf("path %d: %s id %d, want %s id %d", i, r.Path, r.ID, es[i].Path, i+1)
		}
	}
}

// TestCksumMatchesCoreutils compares cksum with the POSIX cksum(1).
func TestCksumMatchesCoreutils(t *testing.T) {
	tool := needTool(t, "cksum", "coreutils")
	for _, in := range [][]byte{nil, []byte("a"), []byte("hello, bom\n"), bytes.Repeat([]byte{0xff, 0, 7}, 100000)} {
		cmd := exec.Command(tool)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		want, err := strconv.ParseUint(strings.Fields(string(out))[0], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := cksum(in); got != uint32(want) {
			t.Errorf("cksum of %d bytes: %d, cksum(1) says %d", len(in), got, want)
		}
	}
}
