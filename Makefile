# Convenience entry points; the build itself is CMake (build/ Release, build-asan/ sanitizers).
JOBS ?= $(shell nproc)
CUDA ?= AUTO

.PHONY: deps build run test asan clean format

deps:
	@sh scripts/deps.sh

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGENBENCH_CUDA=$(CUDA) >/dev/null
	cmake --build build -j $(JOBS)

# First command of the README: build and benchmark a built-in random-weight model.
run: build
	./build/genbench run

# Second command of the README: build and pass every test.
test: build
	cd build && ctest --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer (CPU build).
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGENBENCH_SANITIZE=ON -DGENBENCH_CUDA=OFF >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 GB_SANITIZE=1 ctest --output-on-failure -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf build build-asan
