# omero_upgrade: the PostgreSQL extension (PGXS, C++17) and the omero-upgrade tool.
#
#   make            build the extension and the tool
#   make install    install the extension into the PostgreSQL that pg_config names
#   make test       install missing Debian packages, build, run every test on a throwaway cluster
#   make demo       install missing Debian packages, build, run a whole upgrade on sample data
#   make bench      benchmarks (ratios against the plain-SQL way); not part of make test

EXTENSION  = omero_upgrade
EXTVERSION = 1.1
MODULE_big = omero_upgrade
PG_CONFIG ?= pg_config

EXT_SRCS   = $(sort $(wildcard extension/*.cpp))
OBJS       = $(EXT_SRCS:.cpp=.o)
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

EXTRA_CLEAN = $(TOOL) $(TOOL_OBJS) $(TOOL_OBJS:.o=.d) $(OBJS:.o=.d) test/results test/regression.diffs test/regression.out

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

# Header changes must rebuild the objects that include them.
override CPPFLAGS += -MMD -MP
-include $(OBJS:.o=.d)

# ---- the omero-upgrade tool ------------------------------------------------------------
TOOL       = tool/omero-upgrade
TOOL_SRCS  = $(sort $(wildcard tool/*.cpp tool/cmd/*.cpp))
TOOL_OBJS  = $(TOOL_SRCS:.cpp=.o)
PG_INCLUDEDIR := $(shell $(PG_CONFIG) --includedir 2>/dev/null)
TOOL_CXXFLAGS = -std=c++17 -O2 -g -Wall -Wextra -Wno-unused-parameter -I$(PG_INCLUDEDIR) -Itool -MMD -MP \
                -DOMERO_UPGRADE_VERSION='"$(EXTVERSION)"'
TOOL_LIBS  = -lpq -lpugixml -larchive -lcrypto

all: $(TOOL)

$(TOOL): $(TOOL_OBJS)
	$(CXX) -o $@ $(TOOL_OBJS) $(TOOL_LIBS)

tool/%.o: tool/%.cpp
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
