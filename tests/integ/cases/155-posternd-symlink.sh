# 155-posternd-symlink: posternd started as root trusts nothing the
# unprivileged user could have planted in or around queue_dir. As root it
# touches only the directory itself; what is inside is opened after the
# privileges are dropped, and a symbolic link, a hard link or a foreign
# directory makes it refuse to start, naming what it refused.
. "$POSTERN_TOP/tests/integ/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! id postern >/dev/null 2>&1; then
	notok posternd_symlink_setup "needs root and the postern user"
	exit 0
fi

# pd_refuses NAME PATTERN - a config with only a fresh listener, then
# lib.sh's posternd_refuses.
pd_refuses() {
	conf "listen=127.0.0.1:$(free_port)"
	posternd_refuses "$@"
}

# victim NAME - a root-owned file with known content, mode 600.
victim() {
	printf 'root secret %s\n' "$1" >"$T/$1"
	chown root:root "$T/$1"
	chmod 600 "$T/$1"
}

# untouched NAME FILE - content, owner and mode as victim() left them.
untouched() {
	_got="$(cat "$2") $(stat -c '%U:%G %a' "$2")"
	expect_eq "$1" "$_got" "root secret $(basename "$2") root:root 600"
}

fresh_queue() {
	rm -rf "$T/queue"
	mkdir -m 700 "$T/queue"
	chown postern "$T/queue"
}

# lock.mdb planted as a symbolic link to a root-owned file.
victim v1
fresh_queue
ln -s "$T/v1" "$T/queue/lock.mdb"
pd_refuses lock_symlink_refused "$T/queue/lock.mdb.*symbolic link"
untouched lock_symlink_victim "$T/v1"

# data.mdb planted the same way.
victim v2
fresh_queue
ln -s "$T/v2" "$T/queue/data.mdb"
pd_refuses data_symlink_refused "$T/queue/data.mdb.*symbolic link"
untouched data_symlink_victim "$T/v2"

# Both at once, as in the report.
victim v3
victim v4
fresh_queue
ln -s "$T/v3" "$T/queue/lock.mdb"
ln -s "$T/v4" "$T/queue/data.mdb"
pd_refuses both_symlinks_refused "symbolic link"
untouched both_symlinks_victim_lock "$T/v3"
untouched both_symlinks_victim_data "$T/v4"

# A hard link to a root-owned file.
victim v5
fresh_queue
ln "$T/v5" "$T/queue/lock.mdb"
pd_refuses hardlink_refused "$T/queue/lock.mdb.*link"
untouched hardlink_victim "$T/v5"

# spool planted as a symbolic link to a root-owned directory.
rm -rf "$T/rootdir"
mkdir -m 700 "$T/rootdir"
fresh_queue
ln -s "$T/rootdir" "$T/queue/spool"
pd_refuses spool_symlink_refused "$T/queue/spool.*symbolic link"
expect_eq spool_symlink_target "$(stat -c '%U %a' "$T/rootdir")" "root 700"

# queue_dir itself a symbolic link (to a root-owned directory).
rm -rf "$T/queue" "$T/rootdir"
mkdir -m 700 "$T/rootdir"
victim v6
mv "$T/v6" "$T/rootdir/v6"
ln -s "$T/rootdir" "$T/queue"
pd_refuses queue_dir_symlink_refused "queue_dir $T/queue.*symbolic link"
expect_eq queue_dir_symlink_target "$(stat -c '%U %a' "$T/rootdir")" "root 700"
untouched queue_dir_symlink_victim "$T/rootdir/v6"
rm -f "$T/queue"

# A root-owned directory holding other files (queue_dir = /etc by mistake)
# is not given away.
mkdir -m 755 "$T/queue"
victim v7
mv "$T/v7" "$T/queue/v7"
pd_refuses foreign_dir_refused "queue_dir $T/queue.*owned by root"
expect_eq foreign_dir_kept "$(stat -c '%U %a' "$T/queue")" "root 755"
untouched foreign_dir_victim "$T/queue/v7"
rm -rf "$T/queue"

# A parent the postern user may write: it could swap queue_dir itself.
mkdir -m 755 "$T/pw"
chown postern "$T/pw"
sed -i "s|^queue_dir = .*|queue_dir = $T/pw/queue|" "$T/postern.conf"
"$POSTERN_BIN/posternd" -c "$T/postern.conf" -f >"$T/pd.out" 2>&1 &
pid=$!
reap "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
	kill "$pid"
	notok parent_writable_refused "posternd started: $(tail -c 300 "$T/pd.out")"
elif grep -q "$T/pw.*postern" "$T/pd.out"; then
	ok parent_writable_refused
else
	notok parent_writable_refused "$(tail -c 300 "$T/pd.out")"
fi

# The normal cases still start. A queue root made with `postern enqueue`
# before the first start is taken over: the directory and its files
# become postern's and the directory mode 0700.
rm -rf "$T/queue"
conf hold_domains=example.org
echo x | "$P" enqueue a@example.org >/dev/null
chmod 755 "$T/queue"
start_posternd hold_domains=example.org && ok root_queue_starts
expect_eq root_queue_owner "$(stat -c '%U %a' "$T/queue")" "postern 700"
expect_eq root_queue_files "$(stat -c '%U' "$T/queue/data.mdb" "$T/queue/lock.mdb" | sort -u)" "postern"
check root_queue_readable "$P" queue
expect_grep root_queue_msg "a@example.org" "$T/out"
stop_posternd && ok root_queue_stops

# A missing queue_dir is created for postern; LMDB's files are created by
# postern itself.
rm -rf "$T/queue"
unset SMTP_PORT
start_posternd && ok new_queue_starts
expect_eq new_queue_owner "$(stat -c '%U %a' "$T/queue")" "postern 700"
expect_eq new_queue_files "$(stat -c '%U' "$T/queue/data.mdb" "$T/queue/lock.mdb" "$T/queue/spool" | sort -u)" "postern"
stop_posternd && ok new_queue_stops

# `postern` commands run by root refuse a planted link as well.
victim v8
ln -s "$T/v8" "$T/queue/extra"
rm -f "$T/queue/lock.mdb"
ln -s "$T/v8" "$T/queue/lock.mdb"
expect_rc tool_lock_symlink_refused 1 "$P" queue
expect_grep tool_lock_symlink_said "lock.mdb" "$T/out"
untouched tool_lock_symlink_victim "$T/v8"
