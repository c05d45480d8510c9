package main

import (
	"fmt"
	"path/filepath"

	"github.com/cairndb/cairn/diskstore/backup"
	"github.com/cairndb/cairn/internal/progress"
	"github.com/spf13/cobra"
)

func newRestoreCmd() *cobra.Command {
	var (
		opts    backup.RestoreOptions
		noCheck bool
		tmp     string
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "restore BACKUP DIR",
		Short: "Restore a backup into a new or empty directory, and check it",
		Long: `Restore makes DIR a store from a backup (cairn backup): BACKUP is a backup
set, whose newest generation it restores, or one generation of it. DIR must
be new or empty: restore never overwrites a store.

It hard-links the backup's sealed files (the index's tables, the log's full
segments) where DIR is on the backup's filesystem, unless --copy, and copies
the rest; the restored store gets an identity of its own (back it up into a
new set). It then opens the store once, which replays the part of the log
its index's checkpoint lacks, and checks it (cairn check) unless
--no-check. Serve it with cairn serve --store DIR.`,
		Example: `  cairn restore /backups/cairn ./cairn-data
  cairn restore /backups/cairn/000003-20250303T020000Z ./cairn-data`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			from, dir := args[0], args[1]
			p := newProgress(cmd, "restore", quiet, progress.Options{Unit: "files", ByteRate: true})
			opts.Planned = func(files int, bytes int64) { p.SetTotalBytes(bytes) }
			opts.Progress = p.Add
			res, err := backup.Restore(ctx, from, dir, opts)
			if err != nil {
				p.Abort()
				return err
			}
			p.Done()
			m := res.Generation.Manifest
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "restore: %s holds generation %d of %s (taken %s): every event before position %d; copied %d files (%s), linked %d (%s)\n",
				dir, m.Generation, filepath.Dir(res.Generation.Dir), m.Created.Format("2006-01-02 15:04:05Z"), m.Head,
				res.Copied.Files, progress.Bytes(res.Copied.Bytes), res.Linked.Files, progress.Bytes(res.Linked.Bytes))
			if noCheck {
				return nil
			}
			return runCheck(cmd, dir, tmp, false, quiet)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Copy, "copy", false, "copy every file, even where the restored store could share the backup's by hard links")
	f.BoolVar(&noCheck, "no-check", false, "do not check the restored store")
	f.StringVar(&tmp, "tmp", "", "where the check rebuilds the index to compare it (default: the system's temporary directory)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress, only the summary")
	return cmd
}
