# nooelint: oelint.var.bbclassextend
# (A target daemon with a systemd unit and a system user: no native/nativesdk variant.)
SUMMARY = "posedge store-edge agent: POS register events, durable offline, to MQTT/TLS"
DESCRIPTION = "Takes in every POS register event (LAN, serial and receipt-printer taps), \
               stores it durably in SQLite and forwards it to the central MQTT broker over \
               TLS, at-least-once with stable ids."
# (homepageping needs the network at lint time; CI has package registries only.)
# nooelint: oelint.vars.homepageping
HOMEPAGE = "https://github.com/posedge/posedge"
BUGTRACKER = "https://github.com/posedge/posedge/issues"
SECTION = "net"
# posedge itself; the binary also links the crates listed in posedge-crates.inc, each
# under its own licence (MIT, Apache-2.0, BSD, ISC, Unicode-3.0, ...).
LICENSE = "Apache-2.0"
# The repository has no LICENSE file yet: the checksum covers Cargo.toml's
# `license = "Apache-2.0"` line. yocto-layer/check verifies the line range and md5.
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=7;endline=7;md5=2507bd5f0713f05419cd2f22fa06fe62"

# Keep in step with Cargo.toml's version (yocto-layer/check verifies it).
PV = "0.1.0+git"

# destsuffix=${BP} is the default ${S} on every supported release: ${WORKDIR}/${BP} on
# scarthgap, ${UNPACKDIR}/${BP} on wrynose and later, so S needs no setting.
SRC_URI = "git://github.com/posedge/posedge.git;protocol=https;branch=main;destsuffix=${BP} \
           file://99-posedge-registers.rules \
           "
# Not a commit: set SRCREV:pn-posedge to the commit this layer was taken from (its
# posedge-crates.inc matches that commit's Cargo.lock), or build a local checkout with
# EXTERNALSRC:pn-posedge; see README.md. Until then the recipe is skipped, saying so.
# (A well-formed placeholder, unlike bitbake's "INVALID", still lets externalsrc parse.)
POSEDGE_SRCREV_UNSET = "0000000000000000000000000000000000000000"
SRCREV ?= "${POSEDGE_SRCREV_UNSET}"

require posedge-crates.inc

inherit cargo features_check systemd useradd

REQUIRED_DISTRO_FEATURES = "systemd"

# The firmware build: no embedded broker, certificate generator or benchmark driver.
CARGO_BUILD_FLAGS += "--no-default-features"
# Cargo.toml's release profile strips the binary; leave that to the build system so the
# symbols go to ${PN}-dbg (and the already-stripped QA check passes).
export CARGO_PROFILE_RELEASE_STRIP = "false"

CVE_PRODUCT = "posedge"

# Cargo.toml: rust-version = "1.89", edition 2024.
POSEDGE_MIN_RUST = "1.89"

# Files from SRC_URI file:// entries: UNPACKDIR from styhead on, WORKDIR on scarthgap.
POSEDGE_FILESDIR = "${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}"
# The configuration installed as /etc/posedge/posedge.toml. A bbappend can ship its own:
#   SRC_URI += "file://posedge.toml"
#   POSEDGE_CONFIG = "${POSEDGE_FILESDIR}/posedge.toml"
POSEDGE_CONFIG ?= "${S}/examples/posedge.toml"

# Skip the recipe, with the reason, rather than fail after building a toolchain that is too
# old (or fetching without a revision). Anonymous python on purpose: a parse-time check.
# nooelint: oelint.task.noanonpython
python () {
    import re
    # RUSTVERSION is what oe-core and meta-lts-mixins use to pick rust, cargo and libstd-rs.
    m = re.match(r"\d+(\.\d+)*", d.getVar("RUSTVERSION") or "")
    need = d.getVar("POSEDGE_MIN_RUST")
    if m and bb.utils.vercmp_string_op(m.group(0), need, "<"):
        raise bb.parse.SkipRecipe("needs Rust %s or newer, RUSTVERSION is %s; on scarthgap add "
                                  "meta-lts-mixins (branch scarthgap/rust), see the posedge layer README"
                                  % (need, d.getVar("RUSTVERSION")))
    if d.getVar("SRCREV") == d.getVar("POSEDGE_SRCREV_UNSET") and not d.getVar("EXTERNALSRC"):
        raise bb.parse.SkipRecipe("set SRCREV:pn-posedge to a posedge commit, or EXTERNALSRC:pn-posedge "
                                  "to a checkout; see the posedge layer README")
}

do_install:append() {
    # cargo_do_install has put the binary in ${bindir}.
    install -d ${D}${systemd_system_unitdir}
    sed -e 's,/usr/bin/posedge,${bindir}/posedge,g' \
        -e 's,/etc/posedge/,${sysconfdir}/posedge/,g' \
        -e 's,/usr/share/doc/posedge/,${docdir}/${BPN}/,g' \
        ${S}/systemd/posedge.service > ${D}${systemd_system_unitdir}/posedge.service
    chmod 0644 ${D}${systemd_system_unitdir}/posedge.service

    # Config and certificates: readable by the service's group, not by others. The
    # unit's ConfigurationDirectoryMode=0750 matches; systemd leaves owner and mode of
    # an existing configuration directory as they are.
    install -d -m 0750 ${D}${sysconfdir}/posedge
    install -m 0640 ${POSEDGE_CONFIG} ${D}${sysconfdir}/posedge/posedge.toml
    chown -R root:posedge ${D}${sysconfdir}/posedge

    install -d ${D}${sysconfdir}/udev/rules.d
    install -m 0644 ${POSEDGE_FILESDIR}/99-posedge-registers.rules ${D}${sysconfdir}/udev/rules.d/

    install -d ${D}${docdir}/${BPN}
    install -m 0644 ${S}/README.md ${D}${docdir}/${BPN}/README.md
}

# /var/lib/posedge is not in the image: the unit's StateDirectory=posedge creates it at
# start, owned by posedge with StateDirectoryMode=0750.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system posedge"
USERADD_PARAM:${PN} = "--system --gid posedge --groups dialout \
                       --home-dir ${localstatedir}/lib/posedge --no-create-home \
                       --shell ${base_sbindir}/nologin posedge"

SYSTEMD_SERVICE:${PN} = "posedge.service"

CONFFILES:${PN} = "${sysconfdir}/posedge/posedge.toml \
                   ${sysconfdir}/udev/rules.d/99-posedge-registers.rules \
                   "
