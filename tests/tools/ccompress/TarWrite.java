// Tars written by Apache Commons Compress (what jib uses), for tests/e2e/unpack_dialects.sh: the entries of
// tests/tools/gotar/main.go. java -cp commons-compress.jar TarWrite.java OUTDIR writes OUTDIR/cc-posix.tar (long
// names and big numbers as PAX records, as jib sets it) and OUTDIR/cc-gnu.tar (GNU long names, star/GNU base-256
// numbers).
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Date;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

public class TarWrite {
	static final long MTIME = 1577836800L;
	static final String LONG = "d".repeat(90) + "/" + "e".repeat(90) + "/" + "f".repeat(120);

	static void add(TarArchiveOutputStream t, String name, byte type, int mode, long uid, long gid, String data,
	                String link, long mtime, boolean xattr) throws IOException {
		TarArchiveEntry e = new TarArchiveEntry(name, type);
		if (link != null)
			e.setLinkName(link);
		e.setMode(mode);
		e.setUserId(uid);
		e.setGroupId(gid);
		e.setModTime(new Date(mtime * 1000));
		byte[] b = data == null ? new byte[0] : data.getBytes(StandardCharsets.UTF_8);
		e.setSize(b.length);
		if (xattr)
			e.addPaxHeader("SCHILY.xattr.user.dialect", "commons-compress");
		t.putArchiveEntry(e);
		t.write(b);
		t.closeArchiveEntry();
	}

	static void write(Path out, boolean posix) throws IOException {
		try (TarArchiveOutputStream t = new TarArchiveOutputStream(new FileOutputStream(out.toFile()))) {
			t.setLongFileMode(posix ? TarArchiveOutputStream.LONGFILE_POSIX : TarArchiveOutputStream.LONGFILE_GNU);
			t.setBigNumberMode(posix ? TarArchiveOutputStream.BIGNUMBER_POSIX : TarArchiveOutputStream.BIGNUMBER_STAR);
			t.setAddPaxHeadersForNonAsciiNames(posix);
			add(t, "dir/", TarConstants.LF_DIR, 040750, 1, 2, null, null, MTIME, false);
			add(t, "dir/short", TarConstants.LF_NORMAL, 0100644, 1000, 1000, "short\n", null, MTIME, false);
			add(t, "dir/setuid", TarConstants.LF_NORMAL, 0104755, 0, 0, "setuid\n", null, MTIME, false);
			add(t, "d".repeat(90) + "/", TarConstants.LF_DIR, 040755, 0, 0, null, null, MTIME, false);
			add(t, "d".repeat(90) + "/" + "e".repeat(90) + "/", TarConstants.LF_DIR, 040755, 0, 0, null, null, MTIME,
			    false);
			add(t, LONG, TarConstants.LF_NORMAL, 0100600, 33, 33, "long name\n", null, MTIME, false);
			add(t, "hard-to-long", TarConstants.LF_LINK, 0100600, 33, 33, null, LONG, MTIME, false);
			add(t, "sym-long", TarConstants.LF_SYMLINK, 0120777, 0, 0, null, "/" + LONG, MTIME, false);
			add(t, "fifo", TarConstants.LF_FIFO, 010644, 0, 0, null, null, MTIME, false);
			add(t, "old-mtime", TarConstants.LF_NORMAL, 0100644, 0, 0, "1960\n", null, -315619200L, false);
			add(t, "bigid", TarConstants.LF_NORMAL, 0100644, 3000000, 3000001, "big ids\n", null, MTIME, false);
			add(t, "\u00fcn\u00efc\u00f6d\u00e9", TarConstants.LF_NORMAL, 0100644, 0, 0, "utf-8 name\n", null, MTIME,
			    false);
			add(t, "xattr", TarConstants.LF_NORMAL, 0100644, 0, 0, "x\n", null, MTIME, posix);
			t.finish();
		}
	}

	public static void main(String[] args) throws IOException {
		write(Path.of(args[0], "cc-posix.tar"), true);
		write(Path.of(args[0], "cc-gnu.tar"), false);
	}
}
