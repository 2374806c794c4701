/**
 * The versions of src/db/functions, oldest first: the SHA-256 of the files (`hashSqlSources`) each version
 * applies. A change to any file there needs a new entry, appended with the next number (the test of the
 * sources fails until it is there, and prints it). Never edit or remove an entry: a process refuses to apply
 * sources of a lower version than the database's (docs/DATABASE.md, "Mixed versions"), so the number must
 * grow with every change that is released.
 */
export const SQL_SOURCES_VERSIONS: readonly { version: number; sha256: string }[] = [
  { version: 1, sha256: 'a0a1ee230726238b3ea003ed3adacdfd3c40db3f31769e9bd44a3dbf2803a7ce' },
  { version: 2, sha256: '0addccaf8aa1ebdde283da272a5ef5d6554136a1aff7b8869a7368f58cf770d5' },
  { version: 3, sha256: '1b0ce054d6e4d2183f2b9bb5816a89d720b7675f32212be3e942d154bd267741' },
  { version: 4, sha256: 'ea9d107c3169bbc93da6208f9c05d269b95d8f5367ee409fce00b83da8505716' },
  { version: 5, sha256: '0099044ce379ce8a457611e45e0a9f10020a303dd3e89a32b3cd416216eab2bb' },
  { version: 6, sha256: '5db46fdc8bc482a2681f75f520fc62219db5fcdfb606fbaeb7c25eb520656b31' },
  { version: 7, sha256: '5c6eb2cb45365c97e8eaf912057478d5246d339e9ae5ac0dad8b3cb8b890c05a' },
  { version: 8, sha256: '4b2201ceac5b8e75ca2927262c77ee58d03b765b3aa147b94ca4711490b88932' },
  { version: 9, sha256: 'deb162866d20c83c0c0f478440a4a5c2f3e4c71fdcd1397b98477142e9f3b177' },
  { version: 10, sha256: '8533c8c23ab88cb38e198db3a380dc5a1870025d0308df29fe34acaaeeac19f4' },
  { version: 11, sha256: 'cd3954bb4adf9fb408b6a0c110f44aaca58ef7122ac5332fb67493c55f7875c9' },
  { version: 12, sha256: 'c4fdf3ebf201b1cc4fd2bcd5dae8f5c7cc4e6890a225d0c07ae6f1d903ebae13' },
];
