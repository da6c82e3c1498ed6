package macpkg

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" // xar checksums (integrity, not a signature)
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// A pkg is a xar archive (the format of Apple's open-source xar, see
// xar/include/xar.h.in and xar.5 in apple-oss-distributions/xar, and
// libarchive's archive_read_support_format_xar.c, which bsdtar uses):
//
//	header, 28 bytes, big-endian: magic "xar!", header size u16 (28),
//	  version u16 (1), compressed TOC length u64, uncompressed TOC length
//	  u64, checksum algorithm u32 (1 = SHA-1)
//	TOC: zlib-compressed XML that lists every file with its place in the
//	  heap, its encoding and its checksums
//	heap: first the SHA-1 of the compressed TOC (the TOC says so in
//	  <toc><checksum>), then the files' data
//
// An encoding style "application/x-gzip" means zlib (RFC 1950) data, as
// xar writes it; "application/octet-stream" means stored as is.

const (
	xarMagic       = 0x78617221 // "xar!"
	xarHeaderSize  = 28
	xarVersion     = 1
	xarCksumSHA1   = 1
	xarEncStored   = "application/octet-stream"
	xarEncZlib     = "application/x-gzip"
	xarTimeLayout  = "2006-01-02T15:04:05Z"
	xarTOCCksumLen = sha1.Size
)

// xarNode is a file or directory to put in a xar archive, owned by
// root:wheel.
type xarNode struct {
	Name     string
	Dir      bool
	Mode     fs.FileMode // permission bits
	Data     []byte
	Compress bool // store zlib-compressed rather than as is
	Children []xarNode
}

type xarTOC struct {
	XMLName xml.Name `xml:"xar"`
	TOC     struct {
		CreationTime string         `xml:"creation-time"`
		Checksum     xarChecksumLoc `xml:"checksum"`
		Files        []xarFile      `xml:"file"`
	} `xml:"toc"`
}

type xarChecksumLoc struct {
	Style  string `xml:"style,attr"`
	Offset int64  `xml:"offset"`
	Size   int64  `xml:"size"`
}

type xarFile struct {
	ID    int       `xml:"id,attr"`
	Name  string    `xml:"name"`
	Type  string    `xml:"type"`
	Mode  string    `xml:"mode"`
	UID   int       `xml:"uid"`
	User  string    `xml:"user"`
	GID   int       `xml:"gid"`
	Group string    `xml:"group"`
	CTime string    `xml:"ctime"`
	MTime string    `xml:"mtime"`
	ATime string    `xml:"atime"`
	Data  *xarData  `xml:"data,omitempty"`
	Files []xarFile `xml:"file"`
}

type xarData struct {
	Length            int64   `xml:"length"` // bytes in the heap
	Offset            int64   `xml:"offset"` // from the start of the heap
	Size              int64   `xml:"size"`   // bytes once extracted
	Encoding          xarAttr `xml:"encoding"`
	ArchivedChecksum  xarHash `xml:"archived-checksum"`
	ExtractedChecksum xarHash `xml:"extracted-checksum"`
}

type xarAttr struct {
	Style string `xml:"style,attr"`
}

type xarHash struct {
	Style string `xml:"style,attr"`
	Value string `xml:",chardata"`
}

// writeXar writes nodes as a xar archive whose files all have
// modification time mtime.
func writeXar(w io.Writer, nodes []xarNode, mtime time.Time) error {
	ts := mtime.UTC().Format(xarTimeLayout)
	var toc xarTOC
	toc.TOC.CreationTime = ts
	toc.TOC.Checksum = xarChecksumLoc{Style: "sha1", Offset: 0, Size: xarTOCCksumLen}
	var heap bytes.Buffer // the heap after the TOC checksum
	id := 0
	var add func(ns []xarNode) ([]xarFile, error)
	add = func(ns []xarNode) ([]xarFile, error) {
		var out []xarFile
		for _, n := range ns {
			id++
			f := xarFile{
				ID: id, Name: n.Name, CTime: ts, MTime: ts, ATime: ts,
				User: "root", UID: 0, Group: "wheel", GID: 0,
				Mode: fmt.Sprintf("%04o", n.Mode.Perm()), Type: "file",
			}
			if n.Dir {
				f.Type = "directory"
				kids, err := add(n.Children)
				if err != nil {
					return nil, err
				}
				f.Files = kids
				out = append(out, f)
				continue
			}
			stored, enc := n.Data, xarEncStored
			if n.Compress {
				var z bytes.Buffer
				zw := zlib.NewWriter(&z)
				if _, err := zw.Write(n.Data); err != nil {
					return nil, fmt.Errorf("xar: compress %s: %w", n.Name, err)
				}
				if err := zw.Close(); err != nil {
					return nil, fmt.Errorf("xar: compress %s: %w", n.Name, err)
				}
				stored, enc = z.Bytes(), xarEncZlib
			}
			f.Data = &xarData{
				Length:            int64(len(stored)),
				Offset:            xarTOCCksumLen + int64(heap.Len()),
				Size:              int64(len(n.Data)),
				Encoding:          xarAttr{Style: enc},
				ArchivedChecksum:  xarHash{Style: "sha1", Value: sha1Hex(stored)},
				ExtractedChecksum: xarHash{Style: "sha1", Value: sha1Hex(n.Data)},
			}
			heap.Write(stored)
			out = append(out, f)
		}
		return out, nil
	}
	files, err := add(nodes)
	if err != nil {
		return err
	}
	toc.TOC.Files = files

	xmlTOC, err := xml.MarshalIndent(toc, "", " ")
	if err != nil {
		return fmt.Errorf("xar: toc: %w", err)
	}
	xmlTOC = append([]byte(xml.Header), xmlTOC...)
	var ztoc bytes.Buffer
	zw := zlib.NewWriter(&ztoc)
	if _, err := zw.Write(xmlTOC); err != nil {
		return fmt.Errorf("xar: compress toc: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("xar: compress toc: %w", err)
	}

	hdr := make([]byte, xarHeaderSize)
	binary.BigEndian.PutUint32(hdr[0:], xarMagic)
	binary.BigEndian.PutUint16(hdr[4:], xarHeaderSize)
	binary.BigEndian.PutUint16(hdr[6:], xarVersion)
	binary.BigEndian.PutUint64(hdr[8:], uint64(ztoc.Len()))
	binary.BigEndian.PutUint64(hdr[16:], uint64(len(xmlTOC)))
	binary.BigEndian.PutUint32(hdr[24:], xarCksumSHA1)
	sum := sha1.Sum(ztoc.Bytes())
	for _, b := range [][]byte{hdr, ztoc.Bytes(), sum[:], heap.Bytes()} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}
