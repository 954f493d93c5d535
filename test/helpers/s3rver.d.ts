// s3rver ships no types; test/helpers/s3.ts types the little it uses.
declare module 's3rver' {
  const S3rver: unknown;
  export default S3rver;
}
