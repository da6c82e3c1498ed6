// Package display decodes display identities (EDIDs) for the display signal.
//
// The parser here is pure: it works on the bytes the OS hands over (sysfs
// edid files, the registry's EDID value, IOKit's IODisplayEDID) and never
// touches the OS itself. Every EDID byte is device-controlled — an IP-KVM's
// HDMI capture bridge serves whatever its firmware says — so the parser
// bounds-checks everything and never panics.
//
// Layouts follow VESA E-EDID 1.4 (base block) and CTA-861 (extension tag
// 0x02).
package display

import (
	"errors"
	"fmt"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	// BlockSize is the size of the base block and of every extension block.
	BlockSize = 128
	// MaxSize caps the input; an EDID has at most 256 blocks (32 KiB).
	MaxSize = 32 * 1024

	// ExtTagCTA is the CTA-861 extension block tag.
	ExtTagCTA = 0x02

	// CTA-861 data block tags.
	CTATagAudio          = 1
	CTATagVideo          = 2
	CTATagVendorSpecific = 3
	CTATagSpeaker        = 4
	CTATagExtended       = 7

	// Well-known IEEE OUIs of CTA vendor-specific data blocks.
	OUIHDMI       = 0x000C03 // HDMI Licensing (HDMI 1.x VSDB)
	OUIHDMIForum  = 0xC45DD8 // HDMI Forum (HF-VSDB)
	descriptorLen = 18
)

// Sentinel errors.
var (
	ErrNoHeader = errors.New("edid: missing 00 FF FF FF FF FF FF 00 header")
	ErrTooShort = errors.New("edid: shorter than one 128-byte block")
	ErrTooLarge = errors.New("edid: larger than 32 KiB")
)

var header = [8]byte{0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00}

// EDID is a decoded EDID. All strings are valid UTF-8 (printable ASCII).
type EDID struct {
	// Raw is a copy of the input bytes.
	Raw []byte

	// ManufacturerID is the three-letter PNP id, e.g. "DEL"; empty when a
	// letter is out of range.
	ManufacturerID string
	// ManufacturerRaw is the packed big-endian value of bytes 8–9.
	ManufacturerRaw uint16
	ProductCode     uint16
	SerialNumber    uint32
	// ManufactureWeek is byte 16: 0 unknown, 1–54 week, 0xFF model year.
	ManufactureWeek uint8
	// ManufactureYear is byte 17 + 1990.
	ManufactureYear int
	// ModelYear is true when week is 0xFF: ManufactureYear is a model year.
	ModelYear bool
	Version   uint8
	Revision  uint8
	// WidthMM and HeightMM are the physical size (bytes 21–22, cm) in mm;
	// both 0 when either byte is 0 (size undefined or aspect ratio only).
	WidthMM  int
	HeightMM int

	// MonitorName is the 0xFC descriptor, SerialString the 0xFF descriptor
	// (first occurrence of each); UnspecifiedText lists 0xFE descriptors.
	MonitorName     string
	SerialString    string
	UnspecifiedText []string

	// DetailedTimings are the base block's detailed timing descriptors;
	// Preferred is the first of them (nil when none).
	DetailedTimings []DetailedTiming
	Preferred       *DetailedTiming

	// ExtensionCount is byte 126: the number of extension blocks announced.
	ExtensionCount int
	// ExtensionTags are the tags (byte 0) of the extension blocks present.
	ExtensionTags []uint8
	// CTA holds the decoded CTA-861 extension blocks.
	CTA []CTAExtension

	// ChecksumOK is true when every complete block present sums to 0 mod
	// 256. BadChecksumBlocks lists the failing block indexes (0 = base).
	ChecksumOK        bool
	BadChecksumBlocks []int
	// Truncated is true when fewer bytes were given than the base block
	// announces (128 × (1 + ExtensionCount)) or the length is not a
	// multiple of 128.
	Truncated bool
	// Oversized is true when more blocks were given than announced.
	Oversized bool
}

// DetailedTiming is an 18-byte detailed timing descriptor.
type DetailedTiming struct {
	PixelClockKHz int // pixel clock in kHz
	HActive       int
	VActive       int
	HBlank        int
	VBlank        int
	WidthMM       int // image size from the descriptor
	HeightMM      int
	Interlaced    bool
}

// RefreshMilliHz returns the refresh rate in mHz (0 when undefined).
func (t DetailedTiming) RefreshMilliHz() int {
	total := (t.HActive + t.HBlank) * (t.VActive + t.VBlank)
	if total == 0 {
		return 0
	}
	return int(int64(t.PixelClockKHz) * 1000 * 1000 / int64(total))
}

// CTAExtension is a decoded CTA-861 extension block.
type CTAExtension struct {
	Block           int // block index in the EDID (1..)
	Revision        uint8
	DTDOffset       int
	DataBlocks      []CTADataBlock
	DetailedTimings []DetailedTiming
}

// CTADataBlock is one entry of the CTA data block collection.
type CTADataBlock struct {
	Tag    uint8 // 1 audio, 2 video, 3 vendor-specific, 4 speaker, 7 extended
	Length int   // payload length
	// OUI is the IEEE OUI of a vendor-specific block (tag 3), 0 otherwise.
	OUI uint32
	// ExtendedTag is the extended tag of a tag-7 block.
	ExtendedTag uint8
	// Truncated is true when the block runs past the collection's end.
	Truncated bool
}

// ParseEDID decodes an EDID. It fails only when the input is larger than
// 32 KiB, shorter than one block or lacks the fixed header; anything else
// (bad checksums, missing or extra extension blocks, odd descriptors) is
// reported in the result.
func ParseEDID(b []byte) (*EDID, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	if len(b) < len(header) || [8]byte(b[:8]) != header {
		return nil, ErrNoHeader
	}
	if len(b) < BlockSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooShort, len(b))
	}
	e := &EDID{Raw: append([]byte(nil), b...), ChecksumOK: true}

	mfg := uint16(b[8])<<8 | uint16(b[9])
	e.ManufacturerRaw = mfg
	e.ManufacturerID = pnpID(mfg)
	e.ProductCode = uint16(b[10]) | uint16(b[11])<<8
	e.SerialNumber = uint32(b[12]) | uint32(b[13])<<8 | uint32(b[14])<<16 | uint32(b[15])<<24
	e.ManufactureWeek = b[16]
	e.ModelYear = b[16] == 0xFF
	e.ManufactureYear = 1990 + int(b[17])
	e.Version, e.Revision = b[18], b[19]
	if b[21] != 0 && b[22] != 0 {
		e.WidthMM, e.HeightMM = int(b[21])*10, int(b[22])*10
	}

	for i := 0; i < 4; i++ {
		d := b[54+i*descriptorLen : 54+(i+1)*descriptorLen]
		if d[0] != 0 || d[1] != 0 {
			e.DetailedTimings = append(e.DetailedTimings, parseDTD(d))
			continue
		}
		switch d[3] {
		case 0xFC:
			if e.MonitorName == "" {
				e.MonitorName = descriptorText(d[5:])
			}
		case 0xFF:
			if e.SerialString == "" {
				e.SerialString = descriptorText(d[5:])
			}
		case 0xFE:
			e.UnspecifiedText = append(e.UnspecifiedText, descriptorText(d[5:]))
		}
	}
	if len(e.DetailedTimings) > 0 {
		p := e.DetailedTimings[0]
		e.Preferred = &p
	}

	e.ExtensionCount = int(b[126])
	nblocks := len(b) / BlockSize
	if len(b)%BlockSize != 0 || nblocks < 1+e.ExtensionCount {
		e.Truncated = true
	}
	if nblocks > 1+e.ExtensionCount {
		e.Oversized = true
	}
	for i := 0; i < nblocks; i++ {
		blk := b[i*BlockSize : (i+1)*BlockSize]
		if !checksumOK(blk) {
			e.ChecksumOK = false
			e.BadChecksumBlocks = append(e.BadChecksumBlocks, i)
		}
		if i == 0 {
			continue
		}
		e.ExtensionTags = append(e.ExtensionTags, blk[0])
		if blk[0] == ExtTagCTA {
			e.CTA = append(e.CTA, parseCTA(i, blk))
		}
	}
	return e, nil
}

func checksumOK(blk []byte) bool {
	var s byte
	for _, c := range blk {
		s += c
	}
	return s == 0
}

// pnpID unpacks three 5-bit letters ('A' = 1); "" when any is out of range.
func pnpID(v uint16) string {
	var id [3]byte
	for i, shift := range [3]uint{10, 5, 0} {
		c := (v >> shift) & 0x1F
		if c < 1 || c > 26 {
			return ""
		}
		id[i] = byte('A' - 1 + c)
	}
	return string(id[:])
}

// descriptorText decodes a 13-byte descriptor string: it ends at 0x0A,
// trailing spaces are trimmed and non-printable bytes become '?', so the
// result is always printable ASCII.
func descriptorText(p []byte) string {
	var sb strings.Builder
	for _, c := range p {
		if c == 0x0A {
			break
		}
		if c < 0x20 || c > 0x7E {
			c = '?'
		}
		sb.WriteByte(c)
	}
	return strings.TrimRight(sb.String(), " ")
}

func parseDTD(d []byte) DetailedTiming {
	return DetailedTiming{
		PixelClockKHz: (int(d[0]) | int(d[1])<<8) * 10,
		HActive:       int(d[2]) | int(d[4]&0xF0)<<4,
		HBlank:        int(d[3]) | int(d[4]&0x0F)<<8,
		VActive:       int(d[5]) | int(d[7]&0xF0)<<4,
		VBlank:        int(d[6]) | int(d[7]&0x0F)<<8,
		WidthMM:       int(d[12]) | int(d[14]&0xF0)<<4,
		HeightMM:      int(d[13]) | int(d[14]&0x0F)<<8,
		Interlaced:    d[17]&0x80 != 0,
	}
}

// parseCTA decodes a 128-byte CTA-861 extension block.
func parseCTA(index int, blk []byte) CTAExtension {
	c := CTAExtension{Block: index, Revision: blk[1], DTDOffset: int(blk[2])}
	// The data block collection runs from byte 4 to the DTD offset; an
	// offset of 0 means no data blocks and no DTDs.
	end := c.DTDOffset
	if end == 0 || end < 4 {
		return c
	}
	if end > BlockSize-1 {
		end = BlockSize - 1 // byte 127 is the checksum
	}
	for p := 4; p < end; {
		hdr := blk[p]
		db := CTADataBlock{Tag: hdr >> 5, Length: int(hdr & 0x1F)}
		payload := blk[p+1 : min(p+1+db.Length, end)]
		if p+1+db.Length > end {
			db.Truncated = true
		}
		switch db.Tag {
		case CTATagVendorSpecific:
			if len(payload) >= 3 {
				db.OUI = uint32(payload[0]) | uint32(payload[1])<<8 | uint32(payload[2])<<16
			}
		case CTATagExtended:
			if len(payload) >= 1 {
				db.ExtendedTag = payload[0]
			}
		}
		c.DataBlocks = append(c.DataBlocks, db)
		p += 1 + db.Length
	}
	for p := end; p+descriptorLen <= BlockSize-1; p += descriptorLen {
		d := blk[p : p+descriptorLen]
		if d[0] == 0 && d[1] == 0 {
			break // padding or a display descriptor ends the DTD list
		}
		c.DetailedTimings = append(c.DetailedTimings, parseDTD(d))
	}
	return c
}

// Proto converts the decoded EDID to the wire message. Connector, Internal
// and Active are left for the OS reader to fill.
func (e *EDID) Proto() *agentv1.Display {
	if e == nil {
		return nil
	}
	d := &agentv1.Display{
		Edid:            append([]byte(nil), e.Raw...),
		EdidChecksumOk:  e.ChecksumOK,
		ManufacturerId:  e.ManufacturerID,
		ProductCode:     uint32(e.ProductCode),
		SerialNumber:    e.SerialNumber,
		SerialString:    e.SerialString,
		MonitorName:     e.MonitorName,
		ManufactureWeek: uint32(e.ManufactureWeek),
		ManufactureYear: uint32(e.ManufactureYear),
		WidthMm:         uint32(e.WidthMM),
		HeightMm:        uint32(e.HeightMM),
		ExtensionCount:  uint32(e.ExtensionCount),
	}
	for _, t := range e.ExtensionTags {
		d.ExtensionTags = append(d.ExtensionTags, uint32(t))
	}
	return d
}
