package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/diskstore/backup"
	"github.com/cairndb/cairn/internal/progress"
	"github.com/cairndb/cairn/remotestore"
	"github.com/cairndb/cairn/storeurl"
	"github.com/spf13/cobra"
)

func newBackupCmd(g *globals) *cobra.Command {
	var (
		opts  backup.Options
		list  bool
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "backup DEST",
		Short: "Back up the embedded engine while it serves writes, into a backup set",
		Long: `Backup copies the store (the embedded engine: --store DIR, or a running
server's with --server) into DEST while writes go on. The backup holds every
event acknowledged before it began, and is consistent: restored (cairn
restore), it is a store that opens, passes cairn check and serves.

DEST is a backup set: a directory of generations, one per backup
(000001-20250301T020000Z, 000002-…), each complete on its own. The first
backup into DEST copies everything; each later one copies only the index's
tables and the log's segments written since the one before, and shares the
rest with it by hard links. Delete any generation with rm -r, or let --keep
remove the oldest. A set holds one store's backups: back another store (a
restored one included) up into another directory.

On the store's own filesystem the backup hard-links the store's sealed files
(it takes no time and, at first, no space); --copy copies them, for a
backup that shares no bytes with the store. For a backup that survives the
loss of the store's disk, back up to another filesystem.

Against a server (--server), the server takes the backup and streams it,
leaving out what DEST's newest generation holds; it takes an administrator
or an operator. While a backup runs, compaction (scavenge) waits.

PostgreSQL stores are backed up with PostgreSQL's own tools (pg_dump,
pg_basebackup): see the README.`,
		Example: `  cairn backup /backups/cairn --store ./cairn-data
  cairn backup /backups/cairn --server cairn://admin:changeit@localhost:2113 --keep 7
  cairn backup --list /backups/cairn`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := args[0]
			if list {
				return listBackups(cmd.OutOrStdout(), dest)
			}
			if opts.Keep < 0 {
				return fmt.Errorf("--keep %d: must be 1 or more (0 keeps every generation)", opts.Keep)
			}
			url, err := g.target()
			if err != nil {
				return err
			}
			kind, dir, err := storeurl.Parse(url)
			if err != nil {
				return err
			}
			switch kind {
			case storeurl.Dir:
				if inside(dest, dir) {
					return fmt.Errorf("backup %s: the destination is inside the store's directory %s: back up elsewhere", dest, dir)
				}
			case storeurl.Remote:
			case storeurl.Nats:
				return errors.New("backup: back up a cluster node through its server (--server), or, while the node is stopped, its copy of the store (--store DIR/store, DIR being the node's --data, or DIR/node/store with --nats-embedded)")
			case storeurl.Postgres:
				return errors.New("backup copies the embedded engine's files; back up a PostgreSQL store with PostgreSQL's own tools (pg_dump, pg_basebackup): see the README's Operating cairn")
			default:
				return fmt.Errorf("backup: a %s store has nothing to back up: name a store's directory with --store or a server with --server", kind)
			}
			opts.Source = storeurl.Redact(url)
			ctx := cmd.Context()
			if kind == storeurl.Dir {
				// Refuse, as read-only commands do, a directory that holds
				// no store, rather than create one; the backup itself
				// needs the store open for writing.
				s, err := g.openStore(ctx, url, readOnly)
				if err != nil {
					return err
				}
				if err := s.Close(); err != nil {
					return err
				}
			}
			set, err := backup.OpenSet(dest)
			if err != nil {
				return err
			}
			defer set.Close()
			p := newProgress(cmd, "backup", quiet, progress.Options{Unit: "files", ByteRate: true})
			opts.Planned = func(files int, bytes int64) { p.SetTotalBytes(bytes) }
			opts.Progress = p.Add
			var res *backup.Result
			err = g.withStore(ctx, func(s *cairn.Store) error {
				switch b := s.Backend().(type) {
				case backup.Source:
					res, err = backupLocal(ctx, b, set, opts)
				case *remotestore.Store:
					res, err = backupRemote(ctx, b, set, opts)
				default:
					err = fmt.Errorf("backup: the store (%T) is not the embedded engine", b)
				}
				return err
			})
			if err != nil {
				p.Abort()
				return err
			}
			p.Done()
			printBackup(cmd.ErrOrStderr(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Copy, "copy", false, "copy the store's files even where the backup could hard-link them")
	f.IntVar(&opts.Keep, "keep", 0, "once the backup is complete, remove the oldest generations but this many (0 keeps them all)")
	f.BoolVar(&list, "list", false, "list the generations of the backup set DEST, and back nothing up")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress, only the summary")
	return cmd
}

// inside reports whether path is dir or under it.
func inside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func backupLocal(ctx context.Context, db backup.Source, set *backup.Set, opts backup.Options) (*backup.Result, error) {
	b, err := db.BeginBackup(ctx)
	if err != nil {
		return nil, err
	}
	res, err := set.Write(ctx, b, opts)
	return res, errors.Join(err, b.Close())
}

func backupRemote(ctx context.Context, rs *remotestore.Store, set *backup.Set, opts backup.Options) (*backup.Result, error) {
	prev, err := set.PreviousManifest()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the call if the backup fails first
	stream, err := rs.Backup(ctx, prev)
	if err != nil {
		return nil, err
	}
	return set.Receive(ctx, func() (backup.Chunk, error) {
		c, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return backup.Chunk{}, io.EOF
			}
			return backup.Chunk{}, cairnv1.FromStatus(err)
		}
		return backup.Chunk{Manifest: c.GetManifest(), File: c.GetFile(), Offset: c.GetOffset(), Data: c.GetData()}, nil
	}, opts)
}

// printBackup says what a backup wrote.
func printBackup(w io.Writer, res *backup.Result) {
	m := res.Manifest
	fmt.Fprintf(w, "backup: %s holds generation %d: %s, every event before position %d\n", res.Dir, m.Generation, progress.Bytes(m.Bytes()), m.Head)
	fmt.Fprintf(w, "backup: copied %d files (%s)", res.Copied.Files, progress.Bytes(res.Copied.Bytes))
	if res.Linked.Files > 0 {
		fmt.Fprintf(w, ", linked %d from the store (%s)", res.Linked.Files, progress.Bytes(res.Linked.Bytes))
	}
	if res.Reused.Files+res.Resumed.Files > 0 {
		fmt.Fprintf(w, ", reused from %s %d files (%s)", filepath.Base(res.Previous), res.Reused.Files, progress.Bytes(res.Reused.Bytes))
		if res.Resumed.Files > 0 {
			fmt.Fprintf(w, " and %s of the log's last segment", progress.Bytes(res.Resumed.Bytes))
		}
	}
	fmt.Fprintln(w)
	if m.Compacted {
		fmt.Fprintln(w, "backup: the store's log was compacted: the backup's index cannot be rebuilt from its log, so keep more than one generation")
	}
	for _, r := range res.Removed {
		fmt.Fprintf(w, "backup: removed the old generation %s\n", r)
	}
}

// listBackups prints the generations of the set in dir.
func listBackups(w io.Writer, dir string) error {
	gens, err := backup.List(dir)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GENERATION\tCREATED\tHEAD\tSIZE\tREUSED\tSOURCE")
	for _, g := range gens {
		m := g.Manifest
		var reused int64
		for _, f := range m.Files {
			if f.Reused {
				reused += f.Size
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", filepath.Base(g.Dir), m.Created.Format("2006-01-02 15:04:05Z"), m.Head, progress.Bytes(m.Bytes()), progress.Bytes(reused), m.Source)
	}
	return tw.Flush()
}
