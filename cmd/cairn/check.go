package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/diskstore/backup"
	"github.com/cairndb/cairn/internal/progress"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

func newCheckCmd(g *globals) *cobra.Command {
	var (
		repair bool
		tmp    string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Verify the embedded engine's store offline: the log, the index, and one against the other",
		Long: `Check reads the store in DIR (default: --store) without writing to it, and
verifies every frame of the log and every event (their checksums, positions
that follow on), the index's locators and runs against the log, each
stream's head and state, and the index against the log: for a log never
compacted, entry by entry against the index the log rebuilds (in a scratch
database under --tmp). It names what is wrong — the file and offset, the
stream, version and position — and says whether rebuilding the index from
the log repairs it. It exits with status 1 when something is wrong.

--repair rebuilds the index when that repairs everything found: it moves the
old index aside, replays the whole log into a new one, checks again, and
removes the old one. Damage in the log itself is not repairable that way,
nor is anything in a compacted store (compaction frees parts of the log a
rebuild needs): restore those from a backup.

Check works offline: a store a server holds is refused. To check a running
store, back it up (cairn backup --server) and check the backup: DIR may be a
backup set (its newest generation is checked) or one of its generations.`,
		Example: `  cairn check ./cairn-data
  cairn check --repair ./cairn-data
  cairn check /backups/cairn`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			} else {
				if g.server != "" {
					return errors.New("check works offline, on a store's directory: to check a running server's store, back it up (cairn backup DEST --server …) and check the backup (cairn check DEST)")
				}
				if err := checkStoreURL(g.store); err != nil {
					return err
				}
				kind, d, err := storeurl.Parse(g.store)
				if err != nil {
					return err
				}
				if kind != storeurl.Dir {
					return fmt.Errorf("check verifies the embedded engine's files: --store %s is a %s store", storeurl.Redact(g.store), kind)
				}
				dir = d
			}
			return runCheck(cmd, dir, tmp, repair, quiet)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&repair, "repair", false, "rebuild the index from the log when that repairs every problem found")
	f.StringVar(&tmp, "tmp", "", "where to rebuild the index to compare it (default: the system's temporary directory)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress, only the summary")
	return cmd
}

// runCheck checks (and with repair, repairs) the store in dir, or the
// newest generation of the backup set dir, and prints the report.
func runCheck(cmd *cobra.Command, dir, tmp string, repair, quiet bool) error {
	ctx := cmd.Context()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no store at %s: the directory does not exist", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("no store at %s: it is a file, not a store's directory", dir)
	}
	if isBackupSet(dir) {
		gen, err := backup.Find(dir)
		if err != nil {
			return err
		}
		if repair {
			return fmt.Errorf("%s is a backup set: a backup is not repaired in place; restore it (cairn restore) and repair the restored store", dir)
		}
		fmt.Fprintf(errOut, "check: %s is a backup set: checking its newest generation, %s\n", dir, filepath.Base(gen.Dir))
		dir = gen.Dir
	}
	p := newProgress(cmd, "check", quiet, progress.Options{ByteRate: true})
	opts := diskstore.CheckOptions{TempDir: tmp, Planned: p.SetTotalBytes, Progress: p.Add}
	var r, after *diskstore.CheckReport
	if repair {
		r, after, err = diskstore.Repair(ctx, dir, opts)
	} else {
		r, err = diskstore.Check(ctx, dir, opts)
	}
	if r == nil {
		p.Abort()
		if errors.Is(err, diskstore.ErrNoStore) {
			return fmt.Errorf("no store at %s: the directory holds no cairn store", dir)
		}
		return err
	}
	p.Done()
	printReport(out, r)
	switch {
	case repair && after != nil && err == nil:
		fmt.Fprintf(out, "repaired: the index of %s was rebuilt from its log, and the store passes the check\n", dir)
		return nil
	case err != nil:
		return err
	case !r.OK():
		return fmt.Errorf("%s: %d problems found: %s", dir, len(r.Problems), r.Advice())
	}
	return nil
}

// isBackupSet reports whether dir is a set of backups rather than a store
// or one generation: it holds no log, and backups.
func isBackupSet(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		return false
	}
	gens, err := backup.List(dir)
	return err == nil && len(gens) > 0
}

// printReport prints what a check found.
func printReport(w io.Writer, r *diskstore.CheckReport) {
	if r.OK() {
		fmt.Fprintf(w, "%s: sound: %d segments (%s), %d frames, %d events, %d streams; %d index entries",
			r.Dir, r.Segments, progress.Bytes(r.LogBytes), r.Frames, r.Events, r.Streams, r.IndexEntries)
		if r.Compared {
			fmt.Fprint(w, ", equal to the index the log rebuilds")
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "%s: %d problems:\n", r.Dir, len(r.Problems))
		for _, p := range r.Problems {
			fix := "rebuilding the index does not repair this"
			if p.Index && !r.Compacted {
				fix = "rebuilding the index repairs this"
			}
			fmt.Fprintf(w, "  %s [%s]\n", p, fix)
		}
		fmt.Fprintln(w, r.Advice())
	}
	if r.Lag > 0 {
		fmt.Fprintf(w, "note: the log holds %d frames after the last one the index holds (the store was not closed cleanly, or is a backup): the next open replays them\n", r.Lag)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
