/** Port: identifiers. ULIDs: sortable by time, unique without coordination. */
export interface Ids {
  next(): string;
}
