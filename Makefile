# omero_upgrade: the PostgreSQL extension (PGXS, C++17) and the omero-upgrade tool.
#
#   make            build the extension and the tool
#   make install    install the extension into the PostgreSQL that pg_config names, and the tool
#                   (omero-upgrade into pg_config's bindir, its man page and bash completion;
#                   PREFIX=/usr/local puts them under PREFIX instead; DESTDIR as usual)
#   make test       install missing Debian packages, build, run every test on a throwaway cluster
#   make demo       install missing Debian packages, build, run a whole upgrade on sample data
#   make bench      benchmarks (ratios against the plain-SQL way); not part of make test
#
#   make test PG=13 (or PG=18; also demo, bench, all): the same on that PostgreSQL, built by
#                   test/pg-source.sh from Debian's source package into /var/cache/omero-upgrade/pg-NN
#                   (reused when present). Without PG: Debian 12's PostgreSQL 15.
#                   PG_CONFIG=/path/to/pg_config make test: any other installed PostgreSQL.

# The PostgreSQL of this Debian (12): `make test` without PG tests on it.
PG_DEFAULT_MAJOR = 15

ifneq ($(filter-out $(PG_DEFAULT_MAJOR),$(PG)),)
# ---- PG=NN: another PostgreSQL ----------------------------------------------------------------
# Bootstrap (with the packages a source build needs), build that PostgreSQL (or reuse its cache),
# then run this Makefile again against its pg_config.
.PHONY: all test demo bench build install clean
all test demo bench build install clean:
	@OU_PG_SOURCE=1 test/bootstrap.sh
	@pgc=$$(test/pg-source.sh $(PG)) && \
	  $(MAKE) --no-print-directory PG= PG_CONFIG="$$pgc" $@
else
EXTENSION  = omero_upgrade
# The extension's version, once: omero_upgrade.control's default_version (the tool's --version too).
EXTVERSION := $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" omero_upgrade.control)
MODULE_big = omero_upgrade
PG_CONFIG ?= pg_config
export PG_CONFIG
ifneq ($(PG),)
PG_CONFIG = /usr/lib/postgresql/$(PG_DEFAULT_MAJOR)/bin/pg_config
endif

EXT_SRCS   = $(sort $(wildcard extension/*.cpp))
# common/: PostgreSQL-free units (OMERO's version facts) compiled into the extension and the tool.
COMMON_SRCS = $(sort $(wildcard common/*.cpp))
OBJS       = $(EXT_SRCS:.cpp=.o) $(COMMON_SRCS:.cpp=.o)
PG_CPPFLAGS = -Icommon
# The install script is assembled from one file per concept, in name order.
EXT_SQL_PARTS = $(sort $(wildcard extension/sql/*.sql))
DATA_built = extension/$(EXTENSION)--$(EXTVERSION).sql
DATA       = $(filter-out $(DATA_built),$(wildcard extension/$(EXTENSION)--*--*.sql))
# pg_regress inputs live beside the other tests: test/sql/NAME.sql against test/expected/NAME.out.
REGRESS    = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test --dbname=omero_regress

PG_CXXFLAGS = -std=c++17 -Wno-register -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK  = -lstdc++
# No JIT bitcode: it would need clang with our C++ flags, and nothing here is worth inlining.
override with_llvm = no

EXTRA_CLEAN = extension/.built-for $(TOOL) $(TOOL_MAN) $(TOOL_COMPLETION) tool/commit.inc $(TOOL_OBJS) $(TOOL_OBJS:.o=.d) $(OBJS:.o=.d) test/results test/regression.diffs test/regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
# Before bootstrap has installed postgresql-server-dev there is no PGXS: only the set-up targets work.
all:
	@echo "PGXS not found (is postgresql-server-dev installed? is PG_CONFIG right?): run 'make test' or 'test/bootstrap.sh'" >&2; exit 2
endif

$(DATA_built): $(EXT_SQL_PARTS) Makefile
	{ echo "-- generated from extension/sql/*.sql by make; edit those files instead"; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for f in $(EXT_SQL_PARTS); do echo; echo "-- $$f"; cat $$f; done; } > $@.tmp && mv $@.tmp $@

# Objects built against another PostgreSQL (make test PG=13 after make test, say) are removed
# before anything is built: a module must be compiled against the server that loads it.
PG_BUILT_FOR := $(shell $(PG_CONFIG) --version 2>/dev/null) $(PG_CONFIG)
ifneq ($(PG_BUILT_FOR),$(shell cat extension/.built-for 2>/dev/null))
$(shell rm -f $(OBJS) $(OBJS:.o=.d) $(OBJS:.o=.bc) $(MODULE_big).so $(MODULE_big).index.bc; \
        printf '%s\n' '$(PG_BUILT_FOR)' > extension/.built-for)
endif

# Header changes must rebuild the objects that include them.
override CPPFLAGS += -MMD -MP
-include $(OBJS:.o=.d)

# ---- the omero-upgrade tool ------------------------------------------------------------
TOOL       = tool/omero-upgrade
TOOL_SRCS  = $(sort $(wildcard tool/*.cpp tool/cmd/*.cpp))
TOOL_OBJS  = $(TOOL_SRCS:.cpp=.o) $(COMMON_SRCS:.cpp=.tool.o)
# The tool is built against this Debian's libpq whatever PostgreSQL the extension is built for.
LIBPQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
TOOL_CXXFLAGS = -std=c++17 -O2 -g -Wall -Wextra -Wno-unused-parameter $(LIBPQ_CFLAGS) -Itool -Icommon -MMD -MP \
                -DOMERO_UPGRADE_VERSION='"$(EXTVERSION)"' -DOMERO_UPGRADE_EXTENSION_VERSION='"$(EXTVERSION)"'
TOOL_LIBS  = -lpq -lpugixml -larchive -lcrypto

TOOL_MAN   = tool/omero-upgrade.1
TOOL_COMPLETION = tool/omero-upgrade.bash-completion

all: $(TOOL) $(TOOL_MAN) $(TOOL_COMPLETION)

$(TOOL): $(TOOL_OBJS)
	$(CXX) -o $@ $(TOOL_OBJS) $(TOOL_LIBS)

# The git commit baked into --version ("unknown" outside git); rewritten only when it changes, so
# that only main.o is rebuilt, and only then.
tool/commit.inc: FORCE
	@if c=$$(git -C $(CURDIR) rev-parse --short=12 HEAD 2>/dev/null); then \
	   git -C $(CURDIR) diff --quiet HEAD -- 2>/dev/null || c="$$c-dirty"; \
	 else c=unknown; fi; \
	 line="#define OMERO_UPGRADE_COMMIT \"$$c\""; \
	 if [ "$$(cat $@ 2>/dev/null)" != "$$line" ]; then echo "$$line" > $@; fi
tool/main.o: tool/commit.inc
.PHONY: FORCE
FORCE:

# The man page is the tool's own --help (help2man), and the completion is written by the tool from
# its command table (omero-upgrade --bash-completion): neither is kept by hand.
$(TOOL_MAN): $(TOOL)
	help2man --no-info --no-discard-stderr --section=1 --help-option=--help-all --version-string="$(EXTVERSION)" \
	  --name="upgrade an OMERO.server and its PostgreSQL database safely, step by step" \
	  --output=$@.tmp ./$(TOOL) && mv $@.tmp $@

$(TOOL_COMPLETION): $(TOOL)
	./$(TOOL) --bash-completion > $@.tmp && mv $@.tmp $@

# make install: PGXS installs the extension; the tool goes into pg_config's bindir (or PREFIX/bin),
# the man page into pg_config's mandir (or PREFIX/share/man), the completion into bash-completion's
# directory (or PREFIX/share/bash-completion/completions); DESTDIR prefixes all of them.
ifdef PREFIX
tool_bindir = $(PREFIX)/bin
tool_mandir = $(PREFIX)/share/man
tool_completiondir = $(PREFIX)/share/bash-completion/completions
else
tool_bindir = $(shell $(PG_CONFIG) --bindir 2>/dev/null)
tool_mandir = $(shell $(PG_CONFIG) --mandir 2>/dev/null)
tool_completiondir = $(or $(shell pkg-config --variable=completionsdir bash-completion 2>/dev/null),/usr/share/bash-completion/completions)
endif
.PHONY: install-tool
install: install-tool
install-tool: $(TOOL) $(TOOL_MAN) $(TOOL_COMPLETION)
	install -d '$(DESTDIR)$(tool_bindir)' '$(DESTDIR)$(tool_mandir)/man1' '$(DESTDIR)$(tool_completiondir)'
	install -m 0755 $(TOOL) '$(DESTDIR)$(tool_bindir)/omero-upgrade'
	install -m 0644 $(TOOL_MAN) '$(DESTDIR)$(tool_mandir)/man1/omero-upgrade.1'
	install -m 0644 $(TOOL_COMPLETION) '$(DESTDIR)$(tool_completiondir)/omero-upgrade'

tool/%.o: tool/%.cpp
	$(CXX) $(TOOL_CXXFLAGS) -c -o $@ $<

# The tool's own build of common/ (the extension's is PGXS's, with its flags).
common/%.tool.o: common/%.cpp
	$(CXX) $(TOOL_CXXFLAGS) -c -o $@ $<

-include $(TOOL_OBJS:.o=.d)

# ---- set-up, tests, demo, benchmarks ----------------------------------------------------
.PHONY: bootstrap test demo bench build

bootstrap:
	@test/bootstrap.sh

# A sub-make, so that PGXS (just installed by bootstrap) is read afresh.
build: bootstrap
	@$(MAKE) --no-print-directory -j$(shell nproc 2>/dev/null || echo 2) all

test: build
	@test/with-cluster.sh test/run-all.sh

demo: build
	@test/with-cluster.sh test/demo.sh

bench: build
	@test/with-cluster.sh bench/run.sh

endif # PG=NN
