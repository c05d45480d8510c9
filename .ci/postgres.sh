# Sourced by .ci/run: starts the machine's PostgreSQL 15, creates the cairn
# role and database, and exports CAIRN_TEST_POSTGRES for the tests.
if ! command -v pg_ctlcluster >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	fi
fi
if command -v pg_ctlcluster >/dev/null; then
	pg_ctlcluster --skip-systemctl-redirect 15 main start 2>/dev/null || true
	for _ in $(seq 1 30); do
		pg_isready -q -h 127.0.0.1 -p 5432 && break
		sleep 1
	done
	su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='cairn'\"" | grep -q 1 ||
		su postgres -c "psql -qc \"CREATE USER cairn PASSWORD 'cairn' SUPERUSER\""
	su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='cairn'\"" | grep -q 1 ||
		su postgres -c "createdb -O cairn cairn"
	export CAIRN_TEST_POSTGRES="postgres://cairn:cairn@127.0.0.1:5432/cairn?sslmode=disable"
	echo "PostgreSQL ready: $CAIRN_TEST_POSTGRES"
else
	echo "PostgreSQL is not installed; PostgreSQL tests will fail under CI=true"
fi
