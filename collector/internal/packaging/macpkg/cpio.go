package macpkg

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// The Payload and Scripts archives are cpio in the POSIX.1 "odc" format
// (also called "portable ASCII"), which is what pkgbuild writes and
// Installer reads: a 76-byte header of octal ASCII fields, the NUL-ended
// name, then the data, with no padding (POSIX.1-1988 §10.1.2; also
// cpio(5) in libarchive). The archive ends with an entry named
// "TRAILER!!!".

const (
	cpioMagic   = "070707"
	cpioTrailer = "TRAILER!!!"
	// cpioMaxSize is the largest size the 11 octal digits of c_filesize hold.
	cpioMaxSize = 1<<33 - 1
)

// Unix file type bits, as cpio and Bom store them in a mode.
const (
	modeTypeFile = 0o100000
	modeTypeDir  = 0o040000
)

// entry is one file or directory of a payload, after validation: Path is
// "." or starts with "./", and Mode holds permission bits only.
type entry struct {
	Path string
	Dir  bool
	Mode fs.FileMode
	Data []byte
}

// unixMode is the mode with the file type bits as stat(2) has them.
func (e entry) unixMode() uint32 {
	m := uint32(e.Mode.Perm())
	if e.Mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if e.Mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if e.Mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	if e.Dir {
		return m | modeTypeDir
	}
	return m | modeTypeFile
}

// writeCpio writes entries as an odc cpio archive owned by root:wheel
// (uid and gid 0), every entry with modification time mtime. Inode
// numbers count up from 1 so that no two entries look like hard links.
func writeCpio(w io.Writer, entries []entry, mtime time.Time) error {
	bw := bufio.NewWriter(w)
	mt := mtime.Unix()
	if mt < 0 || mt > 0o77777777777 {
		return fmt.Errorf("cpio: modification time %v out of range", mtime)
	}
	for i, e := range entries {
		if len(e.Data) > cpioMaxSize {
			return fmt.Errorf("cpio: %s: %d bytes is too large", e.Path, len(e.Data))
		}
		nlink := 1
		if e.Dir {
			nlink = 2
		}
		if err := writeCpioHeader(bw, e.Path, i+1, e.unixMode(), nlink, mt, len(e.Data)); err != nil {
			return err
		}
		if _, err := bw.Write(e.Data); err != nil {
			return err
		}
	}
	if err := writeCpioHeader(bw, cpioTrailer, 0, 0, 1, 0, 0); err != nil {
		return err
	}
	return bw.Flush()
}

func writeCpioHeader(w io.Writer, name string, ino int, mode uint32, nlink int, mtime int64, size int) error {
	// c_magic c_dev c_ino c_mode c_uid c_gid c_nlink c_rdev c_mtime c_namesize c_filesize
	_, err := fmt.Fprintf(w, "%s%06o%06o%06o%06o%06o%06o%06o%011o%06o%011o%s\x00",
		cpioMagic, 0, ino&0o777777, mode, 0, 0, nlink, 0, mtime, len(name)+1, size, name)
	return err
}
