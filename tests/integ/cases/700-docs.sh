# 700-docs: the man pages render cleanly, every configuration key and
# every command (with its options) is documented, and `make install`
# produces the tree README documents, with a unit systemd accepts.
#
# The lists come from the binary (`postern check --keys`, `postern
# --help`) and from README, never from a copy here. Each checker is also
# run once on a page broken on purpose, to show that it can fail.
. "$POSTERN_TOP/tests/integ/lib.sh"
M="$POSTERN_TOP/man"
R="$POSTERN_TOP/README.md"

# --- rendering -------------------------------------------------------
# render_clean PAGE - groff's warnings (all of them, -ww) on stdout; 0
# when there are none and groff succeeded.
render_clean() {
	_out=$(groff -man -ww -z "$1" 2>&1)
	_rc=$?
	[ -n "$_out" ] && printf '%s\n' "$_out"
	[ $_rc -eq 0 ] && [ -z "$_out" ]
}
for page in postern.1 postern.conf.5 posternd.8; do
	if render_clean "$M/$page" >"$T/out"; then ok "render_$page"; else
		notok "render_$page" "$(head -c 300 "$T/out")"; fi
done
# A page with an unknown macro and a bad escape must be caught.
{ cat "$M/postern.1"; printf '.XY nonsense\n\\[nosuchglyph]\n'; } >"$T/bad.1"
if render_clean "$T/bad.1" >/dev/null; then
	notok render_catches_warnings "a broken page rendered clean"
else ok render_catches_warnings; fi

# --- configuration keys ------------------------------------------------
"$P" check --keys >"$T/keys" 2>"$T/err"
expect_eq keys_listed "$? $(test -s "$T/keys" && echo nonempty)" "0 nonempty"
# Our own config is one of many: --keys is the table, not the file's keys.
expect_grep keys_has_user '^user$' "$T/keys"
expect_grep keys_has_turn '^turn_enable$' "$T/keys"

# man_keys PAGE - the keys postern.conf(5) has an entry for: a ".TP" then
# ".B key" in the KEYS section.
man_keys() {
	awk '/^\.SH /{ keys = ($2 == "KEYS") }
	    keys && prev == ".TP" && $1 == ".B" && NF == 2 { print $2 }
	    { prev = $0 }' "$1"
}
# readme_keys FILE - the keys named in the first cell of README's key
# table (the rows after "The keys:").
readme_keys() {
	awk '/^The keys:/{ t = 1; next } t && /^\|/ { print; next }
	    t && /^## / { t = 0 }' "$1" |
	awk -F'|' '{ print $2 }' | grep -o '`[a-z_0-9]*`' | tr -d '`'
}
# missing KEYS DOCUMENTED - the keys of the first file not in the second.
missing() {
	sort -u "$2" >"$T/doc.sorted"
	sort -u "$1" | comm -23 - "$T/doc.sorted" | tr '\n' ' '
}
man_keys "$M/postern.conf.5" >"$T/mankeys"
expect_eq keys_in_postern_conf_5 "$(missing "$T/keys" "$T/mankeys")" ""
readme_keys "$R" >"$T/rmkeys"
expect_eq keys_in_readme_table "$(missing "$T/keys" "$T/rmkeys")" ""
# The checkers fail when one entry goes.
sed '/^\.B workers$/d' "$M/postern.conf.5" >"$T/nokey.5"
man_keys "$T/nokey.5" >"$T/mankeys2"
expect_eq keys_check_catches_man "$(missing "$T/keys" "$T/mankeys2")" "workers "
grep -v '^| `workers`' "$R" >"$T/noreadme.md"
readme_keys "$T/noreadme.md" >"$T/rmkeys2"
expect_eq keys_check_catches_readme "$(missing "$T/keys" "$T/rmkeys2")" "workers "

# --- commands ----------------------------------------------------------
# `postern --help`: "  postern NAME OPTIONS..." per command of the table.
"$P" --help 2>&1 | sed -n 's/^  postern //p' >"$T/usage"
expect_grep commands_listed '^check \[--keys\]$' "$T/usage"
# cmd_missing PAGE - "CMD" for a command without a ".SS CMD" section and
# "CMD:OPT" for an option of its usage not in that section (as \-\-opt).
cmd_missing() {
	while read -r name rest; do
		awk -v n="$name" '/^\.SS /{ s = ($2 == n) } s' "$1" >"$T/sect"
		if ! [ -s "$T/sect" ]; then printf '%s ' "$name"; continue; fi
		for o in $(printf '%s\n' "$rest" | grep -oE '(^|[ [|])--?[a-zA-Z][a-z-]*' |
		    sed 's/^[ [|]//' | sort -u); do
			e=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
			grep -q -- "$e" "$T/sect" || printf '%s:%s ' "$name" "$o"
		done
	done <"$T/usage"
}
expect_eq commands_in_postern_1 "$(cmd_missing "$M/postern.1")" ""
sed 's/^\.SS pull$/.SS pul/; s/\\-\\-dry\\-run/dry/g' "$M/postern.1" >"$T/nocmd.1"
expect_eq commands_check_catches "$(cmd_missing "$T/nocmd.1")" \
	"flush:--dry-run pull "

# --- make install ------------------------------------------------------
D="$T/dest"
MK="make -C $POSTERN_TOP --no-print-directory"
if $MK install DESTDIR="$D" PREFIX=/usr >"$T/install.log" 2>&1; then
	ok install_runs
else
	notok install_runs "$(tail -c 400 "$T/install.log")"
fi
# The documented tree: the indented block after README's paragraph that
# starts "The installed tree", first word of each line.
awk '/^The installed tree/{ t = 1; next } t == 1 && /^$/ { t = 2; next }
    t == 2 && /^    \// { print $1; next } t == 2 && /^[^ ]/ { exit }' \
    "$R" >"$T/tree"
expect_eq tree_documented "$(test -s "$T/tree" && echo yes)" yes
miss=""
while read -r p; do
	[ -e "$D$p" ] || [ -L "$D$p" ] || miss="$miss $p"
done <"$T/tree"
expect_eq tree_installed "$miss" ""
# ... and nothing undocumented.
extra=$(cd "$D" && find . ! -type d | sed 's/^\.//' | sort | comm -23 - "$(sort "$T/tree" >"$T/tree.s"; echo "$T/tree.s")" | tr '\n' ' ')
expect_eq tree_nothing_else "$extra" ""
test -x "$D/usr/bin/postern" && test -x "$D/usr/sbin/posternd"
expect_eq binaries_executable $? 0
expect_eq sendmail_link "$(readlink "$D/usr/sbin/sendmail")" ../bin/postern
expect_eq queue_dir_mode "$(stat -c %a "$D/var/spool/postern" 2>&1)" 700
# The installed binaries read the installed configuration by default.
for b in usr/bin/postern usr/sbin/posternd; do
	if grep -qa /etc/postern/postern.conf "$D/$b"; then ok "default_conf_$(basename $b)"
	else notok "default_conf_$(basename $b)" "no /etc/postern/postern.conf in $b"; fi
done
# The sample names every key and is a configuration check accepts.
sed -n 's/^#\{0,1\}\([a-z_0-9]*\) =.*/\1/p' "$D/etc/postern/postern.conf.sample" >"$T/samplekeys"
expect_eq sample_has_every_key "$(missing "$T/keys" "$T/samplekeys")" ""
sed "s|^queue_dir = .*|queue_dir = $T/q|" "$D/etc/postern/postern.conf.sample" >"$T/sample.conf"
check sample_checks_ok "$P" -c "$T/sample.conf" check
# The sendmail link injects (as cron would, by that name).
printf 'Subject: via the link\n\nhi\n' |
	"$D/usr/sbin/sendmail" -C "$T/postern.conf" -f cron@a.example b@c.example
expect_eq sendmail_link_rc $? 0
expect_eq sendmail_link_queued "$(qjson 'msgs[0]["recipients"][0]["address"]')" b@c.example
# A second install keeps an edited postern.conf and a foreign sendmail.
echo "# edited by the operator" >>"$D/etc/postern/postern.conf"
rm "$D/usr/sbin/sendmail"
echo "another MTA" >"$D/usr/sbin/sendmail"
$MK install DESTDIR="$D" PREFIX=/usr >"$T/install2.log" 2>&1
expect_eq reinstall_runs $? 0
expect_grep conf_not_overwritten "edited by the operator" "$D/etc/postern/postern.conf"
expect_eq foreign_sendmail_kept "$(cat "$D/usr/sbin/sendmail")" "another MTA"
expect_eq postern_sendmail_link "$(readlink "$D/usr/sbin/postern-sendmail")" ../bin/postern

# --- the systemd unit ---------------------------------------------------
U="$D/usr/lib/systemd/system/posternd.service"
for want in 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' \
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' 'Restart=on-failure' \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    'ExecStart=/usr/sbin/posternd -f -c /etc/postern/postern.conf'; do
	if grep -qxF "$want" "$U"; then ok "unit_${want%%=*}"; else
		notok "unit_${want%%=*}" "no line $want"; fi
done
# The writable path is the queue the installed configuration names.
expect_eq unit_rw_is_queue "$(sed -n 's/^ReadWritePaths=//p' "$U")" \
	"$(sed -n 's/^queue_dir = //p' "$D/etc/postern/postern.conf")"
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify checks that ExecStart exists and that the Documentation=
	# man pages open: point both at the DESTDIR tree.
	mkdir "$T/unit"
	sed "s|^ExecStart=/usr/sbin/|ExecStart=$D/usr/sbin/|" "$U" >"$T/unit/posternd.service"
	sed 's/^NoNewPrivileges=/NoNewPrivilege=/' "$T/unit/posternd.service" >"$T/unit/bad.service"
	verify() {
		(cd "$T" && MANPATH="$D/usr/share/man" systemd-analyze verify "$1" 2>&1)
		echo "rc=$?"
	}
	expect_eq systemd_analyze_verify "$(verify "$T/unit/posternd.service")" "rc=0"
	if [ "$(verify "$T/unit/bad.service")" = "rc=0" ]; then
		notok systemd_verify_catches "a misspelt key passed"
	else ok systemd_verify_catches; fi
else
	echo "# systemd-analyze is not installed (make test-deps installs it): unit not verified"
fi

# --- the unit's privileges suffice --------------------------------------
# Run the installed daemon as the unit does: as postern from the start,
# no_new_privs, with only the unit's AmbientCapabilities (and as bounding
# set): it must bind a port below 1024 and take a message; without the
# capability it must fail to bind. Needs root (setpriv) and the user.
caps=$(sed -n 's/^AmbientCapabilities=//p' "$U" | tr 'A-Z ' 'a-z,' | sed 's/cap_//g')
uuser=$(sed -n 's/^User=//p' "$U")
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1 ||
    ! getent passwd "$uuser" >/dev/null 2>&1; then
	echo "# not root, no setpriv or no $uuser user: the unit's privileges not tried"
else
	low_port() {
		while :; do
			_lp=$(shuf -i 600-1000 -n 1)
			listening "$_lp" || break
		done
		echo "$_lp"
	}
	# as_unit CAPS - the setpriv command that runs the rest as the
	# unit's user with CAPS only (not a function: run in the background,
	# $! must be the daemon itself, which setpriv becomes).
	as_unit() {
		echo "setpriv --reuid=$uuser --regid=$uuser --init-groups" \
		    "--no-new-privs --inh-caps=-all${1:+,+$1}" \
		    "--ambient-caps=-all${1:+,+$1} --bounding-set=-all${1:+,+$1}"
	}
	mkdir "$T/uq"
	chown "$uuser" "$T/uq"
	lp=$(low_port)
	# d.example is held: the message stays to be counted.
	printf 'queue_dir = %s/uq/q\nlisten = 127.0.0.1:%s\nodmr_listen =\nhold_domains = d.example\n' \
	    "$T" "$lp" >"$T/unit.conf"
	chmod 644 "$T/unit.conf"
	$(as_unit "") "$D/usr/sbin/posternd" -f -c "$T/unit.conf" >"$T/nocap.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && grep -q "bind 127.0.0.1:$lp" "$T/nocap.log"; then
		ok unit_needs_the_capability
	else
		notok unit_needs_the_capability "exit $rc: $(head -c 300 "$T/nocap.log")"
	fi
	$(as_unit "$caps") "$D/usr/sbin/posternd" -f -c "$T/unit.conf" >"$T/unit.log" 2>&1 &
	upid=$!
	reap "$upid"
	if wait_listen "$lp"; then ok unit_caps_bind_low_port; else
		notok unit_caps_bind_low_port "$(head -c 300 "$T/unit.log")"; fi
	swaks --server "127.0.0.1:$lp" --from a@b.example --to c@d.example \
	    --silent 2 >"$T/swaks.out" 2>&1
	expect_eq unit_caps_take_mail $? 0
	expect_eq unit_caps_queued "$(POSTERN_CONF="$T/unit.conf" qjson 'len(msgs)')" 1
	expect_eq unit_runs_as_user "$(ps -o user= -p "$upid")" "$uuser"
	if term_wait "$upid" 300; then ok unit_stops_on_term; else
		notok unit_stops_on_term "still running"; fi
fi
